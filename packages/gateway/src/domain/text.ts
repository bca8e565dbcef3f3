// Characters that change how text reads rather than what it says: shown to payers (merchant
// names) or printed to an operator's terminal (command failures), they are refused or escaped.

/** Control characters (C0, DEL, C1) and the Unicode line and paragraph separators. */
export const CONTROL_CHARACTERS = /[\p{Cc}\u2028\u2029]/u;

/** Bidirectional formatting: marks, embeddings, overrides and isolates (they reorder text). */
export const BIDI_FORMATTING = /[\u200e\u200f\u061c\u202a-\u202e\u2066-\u2069]/u;

/** Either, every occurrence (for replacing). */
export const CONTROL_OR_BIDI_ALL = new RegExp(`${CONTROL_CHARACTERS.source}|${BIDI_FORMATTING.source}`, 'gu');
