// A tiny history-API router: the current path and query string as Preact state, links, and navigation.
import type { ComponentChildren } from "preact";
import { useEffect, useState } from "preact/hooks";

export interface Loc {
  path: string;
  query: URLSearchParams;
}

const listeners = new Set<() => void>();

function current(): Loc {
  return { path: window.location.pathname, query: new URLSearchParams(window.location.search) };
}

function notify(): void {
  for (const l of listeners) l();
}

window.addEventListener("popstate", notify);

/** Goes to `href` (same origin), adding a history entry unless `replace`. */
export function navigate(href: string, replace = false): void {
  const here = window.location.pathname + window.location.search;
  if (href === here) return;
  if (replace) window.history.replaceState(null, "", href);
  else window.history.pushState(null, "", href);
  notify();
}

/** The current location; re-renders the caller when it changes. */
export function useLocation(): Loc {
  const [loc, setLoc] = useState<Loc>(current);
  useEffect(() => {
    const l = () => setLoc(current());
    listeners.add(l);
    return () => {
      listeners.delete(l);
    };
  }, []);
  return loc;
}

/** `path` with `params` as its query string (empty values left out). */
export function href(path: string, params: Record<string, string | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== "") q.set(k, v);
  }
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}

/** The query string of `loc` with `changes` applied (undefined or "" removes a key). */
export function withParams(loc: Loc, changes: Record<string, string | undefined>): string {
  const q = new URLSearchParams(loc.query);
  for (const [k, v] of Object.entries(changes)) {
    if (v === undefined || v === "") q.delete(k);
    else q.set(k, v);
  }
  const s = q.toString();
  return s ? `${loc.path}?${s}` : loc.path;
}

interface LinkProps {
  href: string;
  class?: string;
  title?: string;
  "data-testid"?: string;
  children?: ComponentChildren;
}

/** An `<a>` that navigates in the app on a plain left click (and normally otherwise). */
export function Link({ href: to, children, ...rest }: LinkProps) {
  const onClick = (e: MouseEvent) => {
    if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey || e.defaultPrevented) return;
    e.preventDefault();
    navigate(to);
  };
  return (
    <a {...rest} href={to} onClick={onClick}>
      {children}
    </a>
  );
}

/** Matches `path` against `pattern` (`/a/:id`); the decoded parameters, or null. */
export function match(pattern: string, path: string): Record<string, string> | null {
  const p = pattern.split("/").filter(Boolean);
  const s = path.split("/").filter(Boolean);
  if (p.length !== s.length) return null;
  const out: Record<string, string> = {};
  for (let i = 0; i < p.length; i++) {
    if (p[i].startsWith(":")) {
      try {
        out[p[i].slice(1)] = decodeURIComponent(s[i]);
      } catch {
        return null;
      }
    } else if (p[i] !== s[i]) {
      return null;
    }
  }
  return out;
}
