// google.rpc: Status, Code and the error details an ApiError carries.

export * from "./gen/google/rpc/index.js";
