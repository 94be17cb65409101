// Every refusal in this package is the same kind of error: the caller asked for something
// the data type does not allow. Throwing before any change keeps the state untouched.
import { KeystateError } from "../errors.js";

export function refuse(message: string): never {
  throw new KeystateError("INVALID_REQUEST", message);
}
