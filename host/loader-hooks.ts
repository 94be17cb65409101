// What the loader of `keystate serve`'s CommonJS bundle (host/cli/cached-bundle.ts) leaves for
// the code it runs. That bundle is compiled by vm.Script so that V8's code cache can serve it;
// the loader and the bundle each hold a copy of this module, so the two meet on registered
// symbols, not on module state.

/** The loader's own import(): code compiled by vm.Script cannot call import() on Node 20 without an experimental flag. */
export const IMPORT_HOOK = Symbol.for("keystate.importEsm");
/** Whether the running code came from V8's code cache, for the "node started" line. */
export const CODE_CACHE_HOOK = Symbol.for("keystate.codeCache");

/** "used": V8 took the cache; "rejected": it refused it (another Node or V8 version, other V8 flags); "none": there was none. */
export type CodeCacheUse = "used" | "rejected" | "none";

type Importer = (specifier: string) => Promise<unknown>;
const hooks = globalThis as Record<symbol, unknown>;

/** import() of an ES-module-only package (jco), wherever this code runs. */
export function importEsm<T>(specifier: string): Promise<T> {
  const hook = hooks[IMPORT_HOOK] as Importer | undefined;
  return (hook ? hook(specifier) : import(specifier)) as Promise<T>;
}

/** How the code cache served this process; undefined when it was not started through the cached bundle (tests, the library). */
export function codeCacheUse(): CodeCacheUse | undefined {
  return hooks[CODE_CACHE_HOOK] as CodeCacheUse | undefined;
}

/** Called by the loader only. */
export function setLoaderHooks(importer: Importer, use: CodeCacheUse): void {
  hooks[IMPORT_HOOK] = importer;
  hooks[CODE_CACHE_HOOK] = use;
}
