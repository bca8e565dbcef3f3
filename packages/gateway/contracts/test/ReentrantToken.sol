// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

/// @title Test attacker (forwarder-attacks.test.ts): an ERC-20 whose `transfer` calls the factory.
/// @notice A working token (anyone may mint) that, once armed, sends `attack` (calldata, e.g. a
/// `distributeBatch` of someone else's plan) to the factory from inside `transfer`: while the
/// factory pulls (msg.sender is the deposit address) or while it pays out (msg.sender is the
/// factory), as `onlyFrom` selects (address(0): any sender). It either bubbles the factory's
/// revert or swallows it and records the outcome.
contract ReentrantToken {
    mapping(address => uint256) public balanceOf;
    address public immutable factory;
    bytes public attack;
    bool public bubble;
    address public onlyFrom;
    uint256 public attempts;
    bool public lastOk;
    bytes public lastResult;
    bool private inside;

    constructor(address factory_) {
        factory = factory_;
    }

    function mint(address to, uint256 value) external {
        balanceOf[to] += value;
    }

    function arm(bytes calldata attack_, bool bubble_, address onlyFrom_) external {
        attack = attack_;
        bubble = bubble_;
        onlyFrom = onlyFrom_;
    }

    function transfer(address to, uint256 value) external returns (bool) {
        require(balanceOf[msg.sender] >= value, "balance");
        balanceOf[msg.sender] -= value;
        balanceOf[to] += value;
        if (attack.length > 0 && !inside && (onlyFrom == address(0) || msg.sender == onlyFrom)) {
            inside = true;
            attempts += 1;
            (bool ok, bytes memory ret) = factory.call(attack);
            inside = false;
            lastOk = ok;
            lastResult = ret;
            if (!ok && bubble) {
                assembly {
                    revert(add(ret, 0x20), mload(ret))
                }
            }
        }
        return true;
    }
}
