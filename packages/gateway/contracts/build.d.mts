// Types of build.mjs for the TypeScript test that checks the committed artifacts.
export declare const SOLC_VERSION: string;
export declare const CONTRACTS: readonly string[];
export declare const SETTINGS: { optimizer: { enabled: boolean; runs: number }; evmVersion: string };
export declare const ARTIFACT_DIR: string;
export declare const TS_MODULE: string;
/** Compiles in memory: path relative to packages/gateway -> file text. */
export declare function buildContracts(): Map<string, string>;
/** Paths whose committed text differs from `files`. */
export declare function differingFiles(files: Map<string, string>): string[];
