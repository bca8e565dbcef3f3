/** The SDK's own version; kept equal to packages/sdk/package.json (a test checks it). */
export const SDK_VERSION = '0.1.0';

/** Default `User-Agent`: the protocol requires a non-empty one on every request (§1). */
export const DEFAULT_USER_AGENT = `sparkpay-sdk-node/${SDK_VERSION}`;
