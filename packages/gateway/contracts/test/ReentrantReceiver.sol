// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

/// @title Test attacker (forwarder-attacks.test.ts): a native-coin receiver that calls the factory.
/// @notice Once armed, its receive() sends `attack` (calldata) to the factory, bubbling or
/// swallowing the outcome, and may push `pushBack` wei of what it just received back into the
/// factory (which accepts coin while a settlement runs).
contract ReentrantReceiver {
    address public immutable factory;
    bytes public attack;
    bool public bubble;
    uint256 public pushBack;
    uint256 public attempts;
    bool public lastOk;
    bytes public lastResult;
    bool public pushBackOk;
    bool private inside;

    constructor(address factory_) {
        factory = factory_;
    }

    function arm(bytes calldata attack_, bool bubble_, uint256 pushBack_) external {
        attack = attack_;
        bubble = bubble_;
        pushBack = pushBack_;
    }

    receive() external payable {
        if (inside) return;
        inside = true;
        if (attack.length > 0) {
            attempts += 1;
            (bool ok, bytes memory ret) = factory.call(attack);
            lastOk = ok;
            lastResult = ret;
            if (!ok && bubble) {
                assembly {
                    revert(add(ret, 0x20), mload(ret))
                }
            }
        }
        if (pushBack > 0) {
            (bool sent,) = factory.call{value: pushBack}("");
            pushBackOk = sent;
        }
        inside = false;
    }
}
