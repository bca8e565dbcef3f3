// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {Forwarder, send} from "./Forwarder.sol";

interface IERC20Balance {
    function balanceOf(address owner) external view returns (uint256);
}

/// @title One per network: the deposit addresses of orders and their settlement (PROTOCOL §15, §15a).
/// @notice An order's deposit address is the CREATE2 address of a 46-byte init code that runs
/// `implementation` once (see Forwarder), with salt = keccak256(abi.encode(plan)). The plan
/// commits to the whole settlement: the order, the token, every receiver and amount, and the
/// receiver that takes excess and dust. Anything sent to that address can therefore only ever be
/// paid out according to that plan.
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
///
/// How a settlement moves the money (ADR 0009): each order's forwarder is created and, while it
/// is created, moves its whole balance to this factory; once every order of the call is pulled
/// in, the factory pays each (token, receiver) pair the sum of its shares with ONE transfer. A
/// merchant wallet or fee address that recurs across a batch of 20 orders is paid once, not 20
/// times. The factory pays out exactly what it pulled in, and shares out what actually arrived
/// (a token that takes a fee on transfer delivers less than the forwarder held). Each order's
/// `Distribution` event carries the amount distributed; the shares follow from it and the plan
/// by the rule above.
contract ForwarderFactory {
    struct Plan {
        bytes32 orderRef; // keccak256 of the payment order number: distinct orders, distinct addresses
        address token; // address(0): the network's native coin
        address[] receivers;
        uint256[] amounts; // base units, same order as receivers
        uint256 merchantIndex; // takes the excess and the dust
    }

    /// What one call owes: the sum of the shares per (token, receiver), in first-seen order; and
    /// the factory's balance of the last token pulled in (the next pull of the same token starts
    /// from it instead of asking the token again).
    struct Owed {
        address[] tokens;
        address[] receivers;
        uint256[] amounts;
        uint256 count;
        address lastToken;
        uint256 lastBalance;
        bool known;
    }

    /// The code every forwarder runs while it is created; created by this factory.
    address public immutable implementation;
    /// keccak256 of the forwarders' init code, for computing addresses off-chain.
    bytes32 public immutable initCodeHash;

    /// What the forwarder being created moves to the factory (read back by it through `pending`).
    /// Between calls the three slots hold 1, not 0: a call's first write then costs 2 900 gas and
    /// the next ones 100, and putting the 1 back at the end is refunded.
    address private _pendingToken = address(1);
    uint256 private _pendingAmount = 1;
    /// 2 while a settlement runs: no re-entry (from a token or a receiver), and native coin is
    /// accepted only from the forwarders it creates.
    uint256 private _status = 1;

    event Distribution(bytes32 indexed orderRef, address indexed forwarder, address indexed token, uint256 balance, uint256 planned);
    /// A plan of a batch left out: already distributed (1; by anyone, e.g. a copy of the plan sent
    /// first) or nothing to distribute (2). The rest of the batch goes on.
    event Skipped(bytes32 indexed orderRef, address indexed forwarder, uint8 reason);

    error InvalidPlan();
    error AlreadyDistributed(address forwarder);
    error NothingToDistribute(address forwarder);
    error CloneFailed(address forwarder);
    error NotSettling();
    error Reentered();

    constructor() {
        address impl = address(new Forwarder());
        implementation = impl;
        initCodeHash = keccak256(_initCode(impl));
    }

    /// Native coin comes in only from a native-coin forwarder being created (not while the
    /// factory pays out, when the pending token is back at its between-calls value).
    receive() external payable {
        if (_status != 2 || _pendingToken != address(0)) revert NotSettling();
    }

    /// For the forwarder being created: what it moves here.
    function pending() external view returns (address token, uint256 amount) {
        if (_status != 2) revert NotSettling();
        return (_pendingToken, _pendingAmount);
    }

    /// The deposit address of `plan`, whether or not its forwarder exists yet.
    function forwarderAddress(Plan calldata plan) external view returns (address) {
        return _predict(_salt(plan));
    }

    /// True once `plan` has been distributed (its forwarder exists only from then on).
    function distributed(Plan calldata plan) external view returns (bool) {
        return _predict(_salt(plan)).code.length > 0;
    }

    /// Deploys the plan's forwarder and pays out its whole balance of `plan.token`; reverts when
    /// the plan was distributed already or its address holds nothing.
    function distribute(Plan calldata plan) external {
        _enter();
        Owed memory owed = _owed(plan.receivers.length);
        _pull(plan, owed, false);
        _leave(owed);
    }

    /// Several orders in one transaction (one base fee, one transfer per receiver). A plan
    /// already distributed, or whose address holds nothing, is skipped (`Skipped`), so nobody can
    /// make a relayer's batch revert by distributing one of its plans first. Any other failure
    /// (a malformed plan, a refused payout) reverts the whole batch.
    function distributeBatch(Plan[] calldata plans) external {
        _enter();
        uint256 capacity;
        for (uint256 i = 0; i < plans.length; ++i) capacity += plans[i].receivers.length;
        Owed memory owed = _owed(capacity);
        for (uint256 i = 0; i < plans.length; ++i) _pull(plans[i], owed, true);
        _leave(owed);
    }

    function _enter() private {
        if (_status == 2) revert Reentered();
        _status = 2;
    }

    /// Pays what the call owes and puts the slots back as they were between calls.
    function _leave(Owed memory owed) private {
        _pendingToken = address(1);
        _pendingAmount = 1;
        for (uint256 i = 0; i < owed.count; ++i) send(owed.tokens[i], owed.receivers[i], owed.amounts[i]);
        _status = 1;
    }

    function _owed(uint256 capacity) private pure returns (Owed memory) {
        return Owed(new address[](capacity), new address[](capacity), new uint256[](capacity), 0, address(0), 0, false);
    }

    /// Creates the plan's forwarder, which moves its balance here, and adds the shares of what
    /// arrived to `owed`. `skip`: a plan already distributed or holding nothing is left out.
    function _pull(Plan calldata plan, Owed memory owed, bool skip) private {
        uint256 n = plan.receivers.length;
        if (n == 0 || plan.amounts.length != n || plan.merchantIndex >= n) revert InvalidPlan();
        bytes32 salt = _salt(plan);
        address forwarder = _predict(salt);
        // Checked before CREATE2: a collision there would burn all the gas it was given.
        if (forwarder.code.length > 0) {
            if (!skip) revert AlreadyDistributed(forwarder);
            emit Skipped(plan.orderRef, forwarder, 1);
            return;
        }
        address token = plan.token;
        uint256 balance = _balanceOf(token, forwarder);
        // Deploying for nothing would mark the plan distributed and strand later payments.
        if (balance == 0) {
            if (!skip) revert NothingToDistribute(forwarder);
            emit Skipped(plan.orderRef, forwarder, 2);
            return;
        }
        uint256 received = _create(salt, forwarder, token, balance, owed);
        _credit(plan, forwarder, received, owed);
    }

    /// Creates the forwarder, which moves `balance` of `token` here; resolves to what arrived (a
    /// token may take a fee on transfer).
    function _create(bytes32 salt, address forwarder, address token, uint256 balance, Owed memory owed) private returns (uint256 received) {
        _pendingToken = token;
        _pendingAmount = balance;
        // Only this call's pulls change the factory's balance while it runs (nothing leaves it
        // before `_leave`), so the balance after the previous pull of the token is its balance now.
        uint256 before = owed.known && owed.lastToken == token ? owed.lastBalance : _balanceOf(token, address(this));
        bytes memory code = _initCode(implementation);
        address created;
        assembly {
            created := create2(0, add(code, 0x20), mload(code), salt)
            // The forwarder's reason (a token refusing the transfer, say) reaches the caller.
            if iszero(created) {
                returndatacopy(0, 0, returndatasize())
                revert(0, returndatasize())
            }
        }
        if (created != forwarder) revert CloneFailed(forwarder);
        uint256 afterwards = _balanceOf(token, address(this));
        (owed.lastToken, owed.lastBalance, owed.known) = (token, afterwards, true);
        return afterwards - before;
    }

    /// Adds the plan's shares of `received` to `owed`.
    function _credit(Plan calldata plan, address forwarder, uint256 received, Owed memory owed) private {
        (uint256[] memory shares, uint256 planned) = _shares(plan.amounts, plan.merchantIndex, received);
        address token = plan.token;
        for (uint256 i = 0; i < shares.length; ++i) {
            if (shares[i] > 0) _add(owed, token, plan.receivers[i], shares[i]);
        }
        emit Distribution(plan.orderRef, forwarder, token, received, planned);
    }

    function _balanceOf(address token, address owner) private view returns (uint256) {
        return token == address(0) ? owner.balance : IERC20Balance(token).balanceOf(owner);
    }

    function _add(Owed memory owed, address token, address receiver, uint256 amount) private view {
        uint256 count = owed.count;
        for (uint256 j = 0; j < count; ++j) {
            if (owed.receivers[j] == receiver && owed.tokens[j] == token) {
                owed.amounts[j] += amount;
                return;
            }
        }
        // The factory as a receiver would keep that share for good (checked once per new receiver).
        if (receiver == address(this)) revert InvalidPlan();
        owed.tokens[count] = token;
        owed.receivers[count] = receiver;
        owed.amounts[count] = amount;
        owed.count = count + 1;
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

    /// The forwarders' init code (46 bytes) for `impl`:
    ///   DELEGATECALL(gas, impl, no calldata, no return data)
    ///   on failure: REVERT with impl's revert data (the reason reaches the relayer)
    ///   on success: RETURN one zero byte, the forwarder's code (a STOP), which marks it distributed
    /// In assembly: RETURNDATASIZE x4 PUSH20 impl GAS DELEGATECALL PUSH1 0x28 JUMPI
    /// RETURNDATASIZE PUSH1 0 PUSH1 0 RETURNDATACOPY RETURNDATASIZE PUSH1 0 REVERT
    /// JUMPDEST(0x28) PUSH1 1 PUSH1 0 RETURN.
    function _initCode(address impl) private pure returns (bytes memory) {
        return abi.encodePacked(hex"3d3d3d3d73", impl, hex"5af46028573d600060003e3d6000fd5b60016000f3");
    }
}
