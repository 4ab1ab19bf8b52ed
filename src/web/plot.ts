/**
 * The rate–accuracy plot of the inspector: one line per codec through its measured points (the
 * worst of the target's metrics, relative to the original, against bits per pixel), the target as a
 * dashed line, the policy's choice circled. Plain SVG, no library.
 */

export interface PlotPoint {
  setting: number;
  bpp: number;
  scores: Record<string, number>;
}

export interface PlotInput {
  curves: Record<string, PlotPoint[]>;
  /** the target's value (0.98) */
  target: number;
  chosen: { codec: string; quality: number } | null;
  /** the gateway's name of each codec it makes, by policy-table (harness) name (GET /policy: codecs) */
  names: Record<string, string>;
}

const COLOURS = ['#3b6fd8', '#ff5a36', '#2a9d5b', '#8c4bd6', '#c98a00', '#0f9bb2', '#d6457a', '#6b7280', '#7a5c2e', '#111827'];
const SVG = 'http://www.w3.org/2000/svg';

function el<K extends keyof SVGElementTagNameMap>(name: K, attrs: Record<string, string | number>, text?: string): SVGElementTagNameMap[K] {
  const e = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

const worst = (p: PlotPoint) => Math.min(...Object.values(p.scores));

/** The policy-table codec name as the gateway's answers say it; the harness's reference encoders (Pillow,
 * ffmpeg), which the gateway does not make, keep their name, starred. */
export function gatewayName(codec: string, names: Record<string, string>): string {
  return names[codec] ?? `${codec}*`;
}

export function renderPlot(host: HTMLElement, input: PlotInput): void {
  host.replaceChildren();
  const entries = Object.entries(input.curves).filter(([, pts]) => pts.length > 0);
  if (entries.length === 0) {
    host.textContent = 'The policy table has no measured curves for this class.';
    return;
  }
  const W = 360;
  const H = 240;
  const m = { l: 40, r: 8, t: 8, b: 72 };
  const all = entries.flatMap(([, pts]) => pts);
  // The region that decides: around the target, up to 3 bpp (points beyond sit on the frame).
  const xMax = Math.min(Math.max(...all.map((p) => p.bpp)), 3) * 1.05;
  const yMin = Math.max(0, input.target - 0.12);
  const yMax = Math.max(1.005, Math.max(...all.map(worst)) + 0.005);
  const x = (v: number) => m.l + ((W - m.l - m.r) * Math.min(v, xMax)) / xMax;
  const y = (v: number) => m.t + ((H - m.t - m.b) * (yMax - Math.max(v, yMin))) / (yMax - yMin);
  const svg = el('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': 'rate-accuracy curves' });
  // axes and ticks
  svg.append(el('line', { x1: m.l, y1: H - m.b, x2: W - m.r, y2: H - m.b, stroke: '#555' }));
  svg.append(el('line', { x1: m.l, y1: m.t, x2: m.l, y2: H - m.b, stroke: '#555' }));
  for (let i = 0; i <= 4; i++) {
    const bx = (xMax * i) / 4;
    svg.append(el('text', { x: x(bx), y: H - m.b + 12, 'text-anchor': 'middle' }, bx.toFixed(2)));
    const sy = yMin + ((yMax - yMin) * i) / 4;
    svg.append(el('text', { x: m.l - 3, y: y(sy) + 3, 'text-anchor': 'end' }, sy.toFixed(2)));
  }
  svg.append(el('text', { x: (W + m.l) / 2, y: H - m.b + 24, 'text-anchor': 'middle' }, 'bits per pixel'));
  // the target
  svg.append(el('line', { x1: m.l, y1: y(input.target), x2: W - m.r, y2: y(input.target), stroke: '#999', 'stroke-dasharray': '4 3' }));
  svg.append(el('text', { x: W - m.r, y: y(input.target) - 3, 'text-anchor': 'end', fill: '#666' }, `target ${input.target}`));
  // Gateway codecs first, solid; the harness's reference encoders dashed.
  const made = (codec: string) => codec in input.names;
  entries.sort(([a], [b]) => Number(made(b)) - Number(made(a)) || a.localeCompare(b));
  entries.forEach(([codec, pts], i) => {
    const colour = COLOURS[i % COLOURS.length]!;
    const reference = !made(codec);
    const sorted = [...pts].sort((a, b) => a.bpp - b.bpp);
    svg.append(
      el('polyline', {
        points: sorted.map((p) => `${x(p.bpp)},${y(worst(p))}`).join(' '),
        fill: 'none',
        stroke: colour,
        'stroke-width': 1.5,
        ...(reference ? { 'stroke-dasharray': '3 2', opacity: 0.7 } : {}),
        'data-codec': gatewayName(codec, input.names),
      }),
    );
    for (const p of sorted) svg.append(el('circle', { cx: x(p.bpp), cy: y(worst(p)), r: 2, fill: colour }));
    const lx = m.l + (i % 3) * 105;
    const ly = H - m.b + 36 + Math.floor(i / 3) * 11;
    svg.append(el('rect', { x: lx, y: ly - 7, width: 8, height: 8, fill: colour }));
    svg.append(el('text', { x: lx + 11, y: ly }, gatewayName(codec, input.names)));
  });
  svg.append(el('text', { x: m.l, y: H - 3, fill: '#666' }, '* reference encoders of the harness, not made by the gateway'));
  const chosen = input.chosen;
  const hit = chosen
    ? entries.find(([c]) => gatewayName(c, input.names) === chosen.codec)?.[1].find((p) => p.setting === chosen.quality)
    : undefined;
  if (chosen && hit) {
    svg.append(
      el('circle', { id: 'chosenPoint', cx: x(hit.bpp), cy: y(worst(hit)), r: 6, fill: 'none', stroke: '#111', 'stroke-width': 2 }),
    );
    svg.append(el('text', { x: x(hit.bpp) + 8, y: y(worst(hit)) + 12 }, `${chosen.codec} q${chosen.quality}`));
  }
  host.append(svg);
}
