// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

/// @title Test attacker (forwarder-attacks.test.ts): a token that lies about balances.
/// @notice `balanceOf` reports `claimed` for everyone, so the factory believes a deposit address
/// holds it; `transfer` moves nothing and returns true. When the factory pays it out (msg.sender
/// is the factory), `transfer` tries to turn the payout into `real` (a genuine token the factory
/// holds mid-batch): `real.transfer(to, amount)` and `real.transferFrom(factory, to, amount)`,
/// recording whether either call succeeded.
contract LyingToken {
    uint256 public claimed;
    address public real;
    address public immutable factory;
    uint256 public payouts;
    bool public stoleByTransfer;
    bool public stoleByTransferFrom;

    constructor(address factory_) {
        factory = factory_;
    }

    function set(uint256 claimed_, address real_) external {
        claimed = claimed_;
        real = real_;
    }

    /// What the lie credits to the factory: what forwarders "sent" it, less what it paid out.
    uint256 public atFactory;

    function balanceOf(address owner) external view returns (uint256) {
        return owner == factory ? atFactory : claimed;
    }

    function transfer(address to, uint256 amount) external returns (bool) {
        if (to == factory) atFactory += amount;
        if (msg.sender == factory) atFactory -= amount;
        if (msg.sender == factory && real != address(0)) {
            payouts += 1;
            (bool a, bytes memory ra) = real.call(abi.encodeWithSelector(0xa9059cbb, to, amount));
            if (a && (ra.length == 0 || abi.decode(ra, (bool)))) stoleByTransfer = true;
            (bool b, bytes memory rb) = real.call(abi.encodeWithSelector(0x23b872dd, factory, to, amount));
            if (b && (rb.length == 0 || abi.decode(rb, (bool)))) stoleByTransferFrom = true;
        }
        return true;
    }
}
