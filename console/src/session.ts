// The admin token of this browser tab. Kept in sessionStorage (gone when the tab closes,
// never shared with other tabs, never in a URL) and sent only as an Authorization header:
// the console uses no cookies, so another site cannot make the browser act with it (CSRF).

const KEY = "keystate.console.token";

export function savedToken(): string | undefined {
  try {
    return sessionStorage.getItem(KEY) ?? undefined;
  } catch {
    return memoryToken; // storage disabled: this page load only
  }
}

let memoryToken: string | undefined;

export function saveToken(token: string): void {
  memoryToken = token;
  try {
    sessionStorage.setItem(KEY, token);
  } catch {
    // Storage disabled: the token lives as long as the page.
  }
}

export function forgetToken(): void {
  memoryToken = undefined;
  try {
    sessionStorage.removeItem(KEY);
  } catch {
    // nothing stored
  }
}
