// An asc transform that keeps chosen functions out of line: binaryen's inliner (run by
// asc -O3) never copies them into their callers. For a guest's cold start, where V8 compiles
// each function on its first call, what matters is the code a first call reaches:
//
// - A call through a base class (`Message.encodeTo`) goes through a dispatch function that
//   AssemblyScript makes for the whole class tree, and binaryen inlined every override it
//   calls once into it: the shopping cart's mergeFrom and encodeTo dispatchers were 5.7 KB,
//   a third of the code its first call compiled, almost all of it other messages' codecs.
//   Out of line, a dispatcher is a jump table and only the codecs a call uses are compiled.
// - The SDK's abort() is called from every allocation and bounds check; inlined, its stores
//   were copied into each of them (+1.6 KB of the cart's code).
//
// Binaryen's `no-inline` pass marks the functions whose names match a wildcard pattern; it
// runs here, after asc compiled the module and before asc optimises it.

/** What asc hands a transform (assemblyscript/dist/asc.d.ts `Transform`), as much of it as is used here. */
interface AscBinaryen {
  setPassArgument(key: string, value: string): void;
  clearPassArguments(): void;
}

interface AscModule {
  runPasses(passes: string[]): void;
}

/** A transform class for asc's `transforms` option that keeps the functions matching `patterns` out of line. */
export function outOfLine(patterns: readonly string[]): new () => object {
  return class KeepOutOfLine {
    // Set on the prototype by asc before it makes the instance: its own copy of binaryen.
    declare readonly binaryen: AscBinaryen;

    afterCompile(module: AscModule): void {
      for (const pattern of patterns) {
        this.binaryen.setPassArgument("no-inline", pattern);
        module.runPasses(["no-inline"]);
      }
      this.binaryen.clearPassArguments();
    }
  };
}
