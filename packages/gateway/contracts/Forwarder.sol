// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

interface IForwarderFactory {
    /// The token (address(0): the native coin) and the amount the forwarder being created moves.
    function pending() external view returns (address token, uint256 amount);
}

/// @title What an order's deposit address runs, once, when the factory settles it (PROTOCOL §15, §15a).
/// @notice Each order's deposit address is the CREATE2 address of a 46-byte init code (see
/// `ForwarderFactory._initCode`) that DELEGATECALLs this contract and then leaves ONE byte of code
/// (a STOP). Until settlement the address has no code: native coin and ERC-20 tokens sent there
/// simply accumulate, so a payer can pay from any wallet or exchange and the gateway needs no key
/// to receive.
/// At settlement, inside the factory's CREATE2, `fallback` runs in the deposit address's context
/// (msg.sender is the factory) and moves what the factory reports as pending to the factory, which
/// pays every receiver of the batch with one transfer each. The settlement plan lives only in the
/// CREATE2 salt, checked by the factory.
/// Pays out exactly once: CREATE2 to an address that has code fails, so the byte of code left is
/// the "already distributed" mark, at 200 gas of code deposit and no storage.
contract Forwarder {
    /// This implementation's own address: its fallback only runs through DELEGATECALL.
    address private immutable self;

    error DirectCall();

    constructor() {
        self = address(this);
    }

    /// Reached with empty calldata from the init code's DELEGATECALL.
    fallback() external {
        if (address(this) == self) revert DirectCall();
        (address token, uint256 amount) = IForwarderFactory(msg.sender).pending();
        send(token, msg.sender, amount);
    }
}

error NativeTransferFailed(address to, uint256 amount);
error TokenTransferFailed(address token, address to, uint256 amount);

/// Sends `amount` of `token` (address(0): the native coin) from this contract to `to`.
/// Native coin: all the gas is forwarded, since a receiver may be a contract wallet whose
/// receive() needs more than the 2 300 stipend of `transfer`; its return data is not copied. ERC-20: a safe transfer that accepts
/// tokens returning true and tokens returning nothing (mainnet USDT's `transfer` has no return
/// value), and rejects a false return, a revert, and a call to an address without code (which
/// would "succeed" while moving nothing).
function send(address token, address to, uint256 amount) {
    if (token == address(0)) {
        bool sent;
        // No return data is copied: a receiver cannot make the payout pay for a huge answer.
        assembly {
            sent := call(gas(), to, amount, 0, 0, 0, 0)
        }
        if (!sent) revert NativeTransferFailed(to, amount);
        return;
    }
    (bool ok, bytes memory ret) = token.call(abi.encodeWithSelector(0xa9059cbb, to, amount));
    bool accepted = ok && (ret.length == 0 ? token.code.length > 0 : (ret.length >= 32 && abi.decode(ret, (bool))));
    if (!accepted) revert TokenTransferFailed(token, to, amount);
}
