// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

/// @title A token whose `transfer` returns nothing, like mainnet USDT (0xdac17f95…).
/// @notice Proves the forwarder's safe transfer accepts such tokens; the devnet may use it for
/// Ethereum USDT to behave like the real one. Minimal on purpose: mint, transfer, balances, events.
contract NoReturnToken {
    string public name;
    string public symbol;
    uint8 public immutable decimals;
    address public immutable owner;
    uint256 public totalSupply;
    mapping(address => uint256) public balanceOf;

    event Transfer(address indexed from, address indexed to, uint256 value);

    error NotOwner();

    constructor(string memory name_, string memory symbol_, uint8 decimals_) {
        name = name_;
        symbol = symbol_;
        decimals = decimals_;
        owner = msg.sender;
    }

    function mint(address to, uint256 value) external {
        if (msg.sender != owner) revert NotOwner();
        totalSupply += value;
        balanceOf[to] += value;
        emit Transfer(address(0), to, value);
    }

    /// No return value: callers that insist on a returned bool fail with this token.
    function transfer(address to, uint256 value) external {
        require(balanceOf[msg.sender] >= value, "balance");
        balanceOf[msg.sender] -= value;
        balanceOf[to] += value;
        emit Transfer(msg.sender, to, value);
    }
}
