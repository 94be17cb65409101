// Registered after tsx (ava's nodeArguments): see hooks.mjs for why.
import { register } from "node:module";

register("./hooks.mjs", import.meta.url);
