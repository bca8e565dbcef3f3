// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

/// @title Test attacker (forwarder-attacks.test.ts): runs the forwarders' init code outside the factory.
/// @notice CREATE2s the 46-byte init code with any salt (a victim plan's), answering `pending()`
/// itself, to show that the result is not the victim's deposit address and moves none of its funds.
contract Impostor {
    address private _token;
    uint256 private _amount;

    function pending() external view returns (address token, uint256 amount) {
        return (_token, _amount);
    }

    receive() external payable {}

    /// Returns the created address, or address(0) when the init code reverted.
    function clone(address impl, bytes32 salt, address token, uint256 amount) external returns (address created) {
        _token = token;
        _amount = amount;
        bytes memory code = abi.encodePacked(hex"3d3d3d3d73", impl, hex"5af46028573d600060003e3d6000fd5b60016000f3");
        assembly {
            created := create2(0, add(code, 0x20), mload(code), salt)
        }
    }

    /// The address `clone` would create: differs from the factory's for the same salt.
    function predict(address impl, bytes32 salt) external view returns (address) {
        bytes memory code = abi.encodePacked(hex"3d3d3d3d73", impl, hex"5af46028573d600060003e3d6000fd5b60016000f3");
        return address(uint160(uint256(keccak256(abi.encodePacked(bytes1(0xff), address(this), salt, keccak256(code))))));
    }
}
