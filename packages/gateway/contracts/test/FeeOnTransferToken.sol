// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

/// @title Test token (forwarder-attacks.test.ts): 1% of every transfer is burnt.
/// @notice Out of the gateway's scope; the tests show what the factory does with one.
contract FeeOnTransferToken {
    mapping(address => uint256) public balanceOf;

    error InsufficientBalance(address from, uint256 balance, uint256 needed);

    function mint(address to, uint256 value) external {
        balanceOf[to] += value;
    }

    function transfer(address to, uint256 value) external returns (bool) {
        uint256 have = balanceOf[msg.sender];
        if (have < value) revert InsufficientBalance(msg.sender, have, value);
        balanceOf[msg.sender] = have - value;
        balanceOf[to] += value - value / 100;
        return true;
    }
}
