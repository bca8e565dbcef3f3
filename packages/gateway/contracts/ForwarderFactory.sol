// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {Forwarder} from "./Forwarder.sol";

interface IERC20Balance {
    function balanceOf(address owner) external view returns (uint256);
}

/// @title One per network: the deposit addresses of orders and their settlement (PROTOCOL §15, §15a).
/// @notice An order's deposit address is the CREATE2 address of an EIP-1167 clone of `implementation`,
/// with salt = keccak256(abi.encode(plan)). The plan commits to the whole settlement: the order,
/// the token, every receiver and amount, and the receiver that takes excess and dust. Anything
/// sent to that address can therefore only ever be paid out according to that plan.
///
/// No access control on `distribute`, on purpose: whoever calls it can only make the funds go
/// where the plan (fixed by the salt, hence by the address the payer paid) says, in the amounts
/// the rule below gives. A different plan is a different address with different (usually no)
/// funds. So the operator's relayer, a merchant or a receiver can all settle, and neither a
/// compromised server nor a caller can redirect funds.
///
/// Distribution rule for a forwarder holding `balance` of `token`, with sum = Σ amounts:
/// balance == sum: each receiver gets its amount; balance > sum: the excess goes to
/// receivers[merchantIndex]; balance < sum: each share is floor(amount_i * balance / sum) and the
/// rounding dust goes to receivers[merchantIndex]. The shares always add up to `balance`.
/// (Checked arithmetic: the shortfall product reverts only if sum >= 2^128 base units, far beyond
/// any real token supply.)
contract ForwarderFactory {
    struct Plan {
        bytes32 orderRef; // keccak256 of the payment order number: distinct orders, distinct addresses
        address token; // address(0): the network's native coin
        address[] receivers;
        uint256[] amounts; // base units, same order as receivers
        uint256 merchantIndex; // takes the excess and the dust
    }

    /// The code every clone runs; created by this factory, so its `factory` is this contract.
    address public immutable implementation;
    /// keccak256 of the clones' EIP-1167 init code, for computing addresses off-chain.
    bytes32 public immutable initCodeHash;

    event Payment(bytes32 indexed orderRef, address indexed forwarder, address indexed receiver, address token, uint256 amount);
    event Distribution(bytes32 indexed orderRef, address indexed forwarder, address indexed token, uint256 balance, uint256 planned);

    error InvalidPlan();
    error AlreadyDistributed(address forwarder);
    error NothingToDistribute(address forwarder);
    error CloneFailed(address forwarder);

    constructor() {
        address impl = address(new Forwarder());
        implementation = impl;
        initCodeHash = keccak256(_initCode(impl));
    }

    /// The deposit address of `plan`, whether or not its forwarder exists yet.
    function forwarderAddress(Plan calldata plan) external view returns (address) {
        return _predict(_salt(plan));
    }

    /// True once `plan` has been distributed (its forwarder exists only from then on).
    function distributed(Plan calldata plan) external view returns (bool) {
        return _predict(_salt(plan)).code.length > 0;
    }

    /// Deploys the plan's forwarder and pays out its whole balance of `plan.token`.
    function distribute(Plan calldata plan) external {
        _distribute(plan);
    }

    /// Several orders in one transaction (one base fee); all or nothing, so a plan already
    /// distributed makes the batch revert: check `distributed` before batching.
    function distributeBatch(Plan[] calldata plans) external {
        for (uint256 i = 0; i < plans.length; ++i) _distribute(plans[i]);
    }

    function _distribute(Plan calldata plan) private {
        uint256 n = plan.receivers.length;
        if (n == 0 || plan.amounts.length != n || plan.merchantIndex >= n) revert InvalidPlan();
        bytes32 salt = _salt(plan);
        address forwarder = _predict(salt);
        // Checked before CREATE2: a collision there would burn all the gas it was given.
        if (forwarder.code.length > 0) revert AlreadyDistributed(forwarder);
        uint256 balance = plan.token == address(0) ? forwarder.balance : IERC20Balance(plan.token).balanceOf(forwarder);
        // Deploying for nothing would mark the plan distributed and strand later payments.
        if (balance == 0) revert NothingToDistribute(forwarder);
        (uint256[] memory shares, uint256 planned) = _shares(plan.amounts, plan.merchantIndex, balance);
        _clone(salt, forwarder);
        Forwarder(payable(forwarder)).payOut(plan.token, plan.receivers, shares);
        for (uint256 i = 0; i < n; ++i) {
            if (shares[i] > 0) emit Payment(plan.orderRef, forwarder, plan.receivers[i], plan.token, shares[i]);
        }
        emit Distribution(plan.orderRef, forwarder, plan.token, balance, planned);
    }

    function _shares(uint256[] calldata amounts, uint256 merchantIndex, uint256 balance)
        private
        pure
        returns (uint256[] memory shares, uint256 sum)
    {
        uint256 n = amounts.length;
        shares = new uint256[](n);
        for (uint256 i = 0; i < n; ++i) sum += amounts[i];
        if (balance >= sum) {
            for (uint256 i = 0; i < n; ++i) shares[i] = amounts[i];
            shares[merchantIndex] += balance - sum;
        } else {
            uint256 paid;
            for (uint256 i = 0; i < n; ++i) {
                uint256 share = amounts[i] * balance / sum;
                shares[i] = share;
                paid += share;
            }
            shares[merchantIndex] += balance - paid;
        }
    }

    function _salt(Plan calldata plan) private pure returns (bytes32) {
        return keccak256(abi.encode(plan));
    }

    function _predict(bytes32 salt) private view returns (address) {
        return address(uint160(uint256(keccak256(abi.encodePacked(bytes1(0xff), address(this), salt, initCodeHash)))));
    }

    function _clone(bytes32 salt, address expected) private {
        bytes memory code = _initCode(implementation);
        address created;
        assembly {
            created := create2(0, add(code, 0x20), mload(code), salt)
        }
        if (created != expected) revert CloneFailed(expected);
    }

    /// EIP-1167 minimal proxy init code (55 bytes) for `impl`: deploys 45 bytes of runtime code that
    /// DELEGATECALLs every call, including plain transfers, to `impl`.
    function _initCode(address impl) private pure returns (bytes memory) {
        return abi.encodePacked(
            hex"3d602d80600a3d3981f3363d3d373d3d3d363d73", impl, hex"5af43d82803e903d91602b57fd5bf3"
        );
    }
}
