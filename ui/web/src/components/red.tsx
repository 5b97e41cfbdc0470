// RED (requests, errors, duration) as the APM views, the home page and the trace-service widget show it: the
// figures of one service as a definition list, and a services or resources table's cells (all text).
import { formatNs, formatNumber, formatPercent, formatRate } from "../format";

/** The RED figures of a service or resource (`/api/ui/services`) that are shown. */
export interface RedFigures {
  hits: number;
  errors: number;
  requests_per_sec: number;
  error_rate: number;
  p50: number | null;
  p95: number | null;
  p99: number | null;
}

/** A service's RED figures, each a label over its value (`red-list` in styles.css; `class` lays them out). */
export function RedList({ r, class: cls, testid }: { r: RedFigures; class: string; testid: string }) {
  return (
    <dl class={`red-list ${cls}`} data-testid={testid}>
      <div><dt>Requests</dt><dd class="num">{formatNumber(r.hits)}</dd></div>
      <div><dt>Req/s</dt><dd class="num">{formatRate(r.requests_per_sec)}</dd></div>
      <div><dt>Errors</dt><dd class="num">{formatNumber(r.errors)}</dd></div>
      <div><dt>Error rate</dt><dd class="num">{formatPercent(r.error_rate)}</dd></div>
      <div><dt>p50</dt><dd class="num">{formatNs(r.p50)}</dd></div>
      <div><dt>p95</dt><dd class="num">{formatNs(r.p95)}</dd></div>
      <div><dt>p99</dt><dd class="num">{formatNs(r.p99)}</dd></div>
    </dl>
  );
}

/** A table cell with an error rate (0 to 1) as a percentage, in the error colour when there are errors. */
export function ErrorRateCell({ rate }: { rate: number }) {
  return <td class={rate > 0 ? "num has-errors" : "num"}>{formatPercent(rate)}</td>;
}

/** The RED columns of a services or resources table: hits, req/s, errors, error rate, p50, p95, p99. */
export function RedCells({ r }: { r: RedFigures }) {
  return (
    <>
      <td class="num">{formatNumber(r.hits)}</td>
      <td class="num">{formatRate(r.requests_per_sec)}</td>
      <td class="num">{formatNumber(r.errors)}</td>
      <ErrorRateCell rate={r.error_rate} />
      <td class="num">{formatNs(r.p50)}</td>
      <td class="num">{formatNs(r.p95)}</td>
      <td class="num">{formatNs(r.p99)}</td>
    </>
  );
}
