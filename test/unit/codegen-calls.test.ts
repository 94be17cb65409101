// The typed forward / side-effect targets generated into calls.ts. (That the output
// compiles and routes is shown by test/integration/effects.test.ts: OrderDesk.Submit
// forwards through OrdersCalls.forwardPlaceAndForward.)
import test from "ava";
import type { IFileDescriptorSet } from "protobufjs/ext/descriptor.js";
import { generateCalls } from "../../host/build/codegen-calls.js";

const set: IFileDescriptorSet = {
  file: [
    {
      name: "shop.proto",
      package: "shop",
      service: [
        {
          name: "Ledger",
          method: [
            { name: "Record", inputType: ".shop.Entry", outputType: ".shop.Balance" },
            { name: "Watch", inputType: ".shop.Entry", outputType: ".shop.Balance", serverStreaming: true },
            { name: "Odd", inputType: ".other.Unknown", outputType: ".shop.Balance" },
          ],
        },
        { name: "Empty" },
      ],
    },
    { name: "vendor/other.proto", package: "other", service: [{ name: "Elsewhere", method: [{ name: "Go", inputType: ".shop.Entry", outputType: ".shop.Entry" }] }] },
  ],
};

function generate(classNames: Array<[string, string]>): string {
  return generateCalls({ set, files: ["shop.proto"], classNames: new Map(classNames), sdkImport: "sdk", messagesImport: "./messages" });
}

test("one class per service of the module's own files, with typed forward and side-effect targets", (t) => {
  const source = generate([["shop.Entry", "Entry"], ["shop.Balance", "Balance"]]);
  t.true(source.includes(`import { Context } from "sdk";`));
  t.true(source.includes(`import { Entry } from "./messages";`), "only the request types are imported");
  t.true(source.includes(`export class LedgerCalls {\n  static readonly SERVICE: string = "shop.Ledger";`));
  t.true(source.includes(`  static forwardRecord(ctx: Context, request: Entry): void {\n    ctx.forward(LedgerCalls.SERVICE, "Record", request);\n  }`));
  t.true(source.includes(`  static sideEffectRecord(ctx: Context, request: Entry, synchronous: bool = false): void {\n    ctx.sideEffect(LedgerCalls.SERVICE, "Record", request, synchronous);\n  }`));
  t.true(source.includes("which replies shop.Balance"));
  t.true(source.includes("// rpc Watch is streaming"), "streaming rpcs get no target");
  t.false(source.includes("forwardWatch"));
  t.true(source.includes("// rpc Odd: its request type other.Unknown has no generated class"));
  t.true(source.includes("export class EmptyCalls {"), "a service without methods still gets its SERVICE name");
  t.false(source.includes("Elsewhere"), "services of imported files are left out");
});

test("a class name never shadows a generated message class", (t) => {
  const source = generate([["shop.Entry", "Entry"], ["shop.LedgerCalls", "LedgerCalls"]]);
  t.true(source.includes("export class LedgerCalls_ {"));
  t.true(source.includes(`ctx.forward(LedgerCalls_.SERVICE, "Record", request);`));
});
