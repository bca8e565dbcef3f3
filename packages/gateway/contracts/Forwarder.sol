// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

/// @title The code behind every order's deposit address (PROTOCOL §15).
/// @notice Each order's deposit address is an EIP-1167 clone of this contract, created with
/// CREATE2 by the factory when the order is settled. Until then the address has no code: native
/// coin and ERC-20 tokens sent there simply accumulate, so a payer can pay from any wallet or
/// exchange and the gateway needs no key to receive.
/// The clone keeps no storage. `factory` is an immutable, i.e. part of this implementation's
/// code, which every clone runs through DELEGATECALL. The settlement plan lives only in the
/// CREATE2 salt, checked by the factory.
/// Pays out exactly once: only the factory may call `payOut`, and the factory calls it only in
/// the transaction that creates the clone. Creating the same clone again is impossible (CREATE2
/// to an address that has code fails), so the clone's existence is the "already distributed"
/// mark, at no storage cost (a flag would add ~22 100 gas to every settlement).
contract Forwarder {
    /// The factory that created this implementation and alone may move the clones' funds.
    address public immutable factory;

    error OnlyFactory();
    error NativeTransferFailed(address to, uint256 amount);
    error TokenTransferFailed(address token, address to, uint256 amount);

    constructor() {
        factory = msg.sender;
    }

    /// Native coin sent once the clone exists (after its distribution) is accepted rather than
    /// bounced; before that the address has no code and needs none to receive.
    receive() external payable {}

    /// Pays `shares[i]` of `token` (address(0): the native coin) to `receivers[i]`. The factory
    /// computed the shares from this clone's balance and the plan; a zero share is skipped.
    function payOut(address token, address[] calldata receivers, uint256[] calldata shares) external {
        if (msg.sender != factory) revert OnlyFactory();
        for (uint256 i = 0; i < receivers.length; ++i) {
            uint256 share = shares[i];
            if (share == 0) continue;
            if (token == address(0)) _sendNative(receivers[i], share);
            else _sendToken(token, receivers[i], share);
        }
    }

    /// All the gas is forwarded: a receiver may be a contract wallet whose receive() needs more
    /// than the 2 300 stipend of `transfer`.
    function _sendNative(address to, uint256 amount) private {
        (bool ok,) = to.call{value: amount}("");
        if (!ok) revert NativeTransferFailed(to, amount);
    }

    /// A safe ERC-20 transfer: accepts tokens that return true and tokens that return nothing
    /// (mainnet USDT's `transfer` has no return value), rejects a false return, a revert, and a
    /// call to an address without code (which would "succeed" while moving nothing).
    function _sendToken(address token, address to, uint256 amount) private {
        (bool ok, bytes memory ret) = token.call(abi.encodeWithSelector(0xa9059cbb, to, amount));
        bool accepted = ok && (ret.length == 0 ? token.code.length > 0 : (ret.length >= 32 && abi.decode(ret, (bool))));
        if (!accepted) revert TokenTransferFailed(token, to, amount);
    }
}
