// Public surface of the guest protobuf runtime: what generated message classes import.
export { Writer, varint32Size } from "./writer";
export { Reader, MAX_DEPTH, EMPTY_BYTES } from "./reader";
export { Message, encode, decode, mergeInto, readMessage, writeMessage } from "./message";
export { KnownStrings } from "./known-strings";
