// A virtualized list: a scroll container whose rows all have one fixed height; only the rows in view (plus a
// small overscan) are in the DOM, and a spacer of the full height keeps the scrollbar true, so 100k rows scroll
// as smoothly as 10.
import "./virtual-list.css";
import type { ComponentChildren } from "preact";
import { useEffect, useLayoutEffect, useRef, useState } from "preact/hooks";

export interface VirtualListProps<T> {
  items: readonly T[];
  /** The height of every row, in CSS pixels (rows must not grow: their content is clipped). */
  rowHeight: number;
  /** A stable key per item. */
  itemKey: (item: T, index: number) => string;
  /** One row; it is placed by the list (absolute top), so it must not set its own position. */
  renderRow: (item: T, index: number) => ComponentChildren;
  /** Rows rendered beyond each edge of the view. */
  overscan?: number;
  /** Extra class of the scroll container (its height cap comes from CSS: `max-height`). */
  class?: string;
  testid?: string;
  label?: string;
  /** Extra `data-*` attributes of the scroll container (e.g. `data-row-count`). */
  data?: Record<string, string>;
}

/** The view's height before it is measured: tall enough that a short list renders every row at once. */
const UNMEASURED_HEIGHT = 1200;

export function VirtualList<T>(props: VirtualListProps<T>) {
  const { items, rowHeight, itemKey, renderRow } = props;
  const overscan = props.overscan ?? 8;
  const ref = useRef<HTMLDivElement>(null);
  const [scrollTop, setScrollTop] = useState(0);
  const [viewHeight, setViewHeight] = useState(UNMEASURED_HEIGHT);

  // The view's height follows the container (window resizes, the detail panel opening).
  useLayoutEffect(() => {
    const el = ref.current;
    if (!el) return;
    const measure = () => setViewHeight(el.clientHeight || UNMEASURED_HEIGHT);
    measure();
    if (typeof ResizeObserver === "undefined") return;
    const ro = new ResizeObserver(measure);
    ro.observe(el);
    return () => ro.disconnect();
  }, []);

  // Fewer rows than before (a new query): the old offset may point past the end.
  useEffect(() => {
    const el = ref.current;
    if (el && el.scrollTop !== scrollTop) setScrollTop(el.scrollTop);
  }, [items.length]);

  // A scroll event per frame at most: the offset is read when the frame is drawn.
  const frame = useRef(0);
  useEffect(() => () => cancelAnimationFrame(frame.current), []);
  const onScroll = () => {
    if (frame.current) return;
    frame.current = requestAnimationFrame(() => {
      frame.current = 0;
      if (ref.current) setScrollTop(ref.current.scrollTop);
    });
  };

  // Home/End jump to the ends (also when a row has the focus); the rest is the browser's own scrolling.
  const onKeyDown = (e: KeyboardEvent) => {
    const el = ref.current;
    if (!el || e.altKey || e.ctrlKey || e.metaKey) return;
    if (e.key === "End") el.scrollTop = el.scrollHeight;
    else if (e.key === "Home") el.scrollTop = 0;
    else return;
    e.preventDefault();
    onScroll();
  };

  const total = items.length * rowHeight;
  const first = Math.max(0, Math.floor(scrollTop / rowHeight) - overscan);
  const last = Math.min(items.length, Math.ceil((scrollTop + viewHeight) / rowHeight) + overscan);
  const rows: ComponentChildren[] = [];
  for (let i = first; i < last; i++) {
    const item = items[i] as T;
    rows.push(
      <div key={itemKey(item, i)} class="vlist-slot" style={{ top: `${i * rowHeight}px`, height: `${rowHeight}px` }}>
        {renderRow(item, i)}
      </div>,
    );
  }

  const data: Record<string, string> = {};
  for (const [k, v] of Object.entries(props.data ?? {})) data[`data-${k}`] = v;
  return (
    <div
      ref={ref}
      class={props.class ? `vlist ${props.class}` : "vlist"}
      data-testid={props.testid}
      aria-label={props.label}
      role="list"
      tabIndex={0}
      onScroll={onScroll}
      onKeyDown={onKeyDown}
      {...data}
    >
      <div class="vlist-spacer" style={{ height: `${total}px` }}>
        {rows}
      </div>
    </div>
  );
}
