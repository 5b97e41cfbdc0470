// The key form: shown when the server refuses a request for its keys (SPEC §9: with `[auth]` keys configured,
// reads need an API key and an application key); the keys are kept for the tab and sent with every request.
import { useEffect, useState } from "preact/hooks";
import { onAuthNeeded, storeKeys, storedKeys } from "../api";

/** The form, over the page, once a request was refused; saving reloads the page with the keys. */
export function KeyPrompt() {
  const [message, setMessage] = useState<string | null>(null);
  const [api, setApi] = useState(() => storedKeys()?.api ?? "");
  const [app, setApp] = useState(() => storedKeys()?.app ?? "");
  useEffect(() => onAuthNeeded((m) => setMessage((old) => old ?? m)), []);
  if (message === null) return null;
  const save = (e: Event) => {
    e.preventDefault();
    storeKeys({ api, app });
    window.location.reload();
  };
  return (
    <div class="key-backdrop">
      <form class="key-form" data-testid="key-form" onSubmit={save} aria-labelledby="key-title">
        <h2 id="key-title">This server wants keys</h2>
        <p class="error" role="alert" data-testid="key-message">
          {message}
        </p>
        <p class="muted">
          Enter an API key and an application key from the server's <code>[auth]</code> settings. They are kept in
          this tab only.
        </p>
        <KeyInput label="API key" testid="key-api" value={api} onInput={setApi} />
        <KeyInput label="Application key" testid="key-app" value={app} onInput={setApp} />
        <div class="key-actions">
          <button type="submit" data-testid="key-save">
            Use these keys
          </button>
          <button type="button" class="link-button" onClick={() => setMessage(null)}>
            Cancel
          </button>
        </div>
      </form>
    </div>
  );
}

/** One key's labelled field (a password field: the key is not shown). */
function KeyInput(props: { label: string; testid: string; value: string; onInput: (value: string) => void }) {
  return (
    <label>
      {props.label}
      <input
        type="password"
        autocomplete="off"
        data-testid={props.testid}
        value={props.value}
        onInput={(e) => props.onInput((e.currentTarget as HTMLInputElement).value)}
      />
    </label>
  );
}

/** "Forget keys" in the navigation, while keys are kept. */
export function ForgetKeys() {
  if (!storedKeys()) return null;
  const forget = () => {
    storeKeys(null);
    window.location.reload();
  };
  return (
    <button type="button" class="link-button nav-keys" data-testid="forget-keys" onClick={forget}>
      Forget keys
    </button>
  );
}
