// escp as a TypeScript library (package.json "exports"): copy, send, receive, the one error
// type with its stable codes, and the types. docs/api.md describes and exercises all of it.
export { copy, receive, send, type Received } from "./api.ts";
export { Transfer, type TransferResult } from "./transfer.ts";
export type { TransferOptions, TransferProgress } from "./options.ts";
export { EscpError } from "../errors/escp-error.ts";
export { ERROR_CODES, isErrorCode, type ErrorCode, type ErrorScope } from "../errors/codes.ts";
