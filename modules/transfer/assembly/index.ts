// The money-transfer example: an Account entity and a Transfer saga over it (see
// proto/transfer.proto for the state machine, modules/README.md for the pattern).
import { register } from "keystate-guest-sdk/assembly/index";
import { Account } from "./account";
import { Transfer } from "./transfer";

register(new Account());
register(new Transfer());
