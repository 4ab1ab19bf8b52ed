/**
 * The inspector page (GET /ui): pick an image and settings, compress it on the gateway or encode it
 * in the browser, and see original and reconstruction side by side with the bytes and image tokens of
 * every stage and the policy's reason. Public API only (/policy, /compress, /bitstreams); the API key
 * lives in this tab's session storage and goes in the Authorization header, never in a URL.
 * `document.body.dataset.state` (idle, busy, done, error) tells tests when a step is over.
 */
import {
  BrowserEncodeError,
  callGateway,
  compressInBrowser,
  GatewayError,
  type Decision as GatewayDecision,
  type EditorInfo,
  type Gateway,
  type Stored,
} from './encoder.js';
import { renderPlot, type PlotPoint } from './plot.js';

/** A codec kind as GET /policy describes it (the gateway's kind table). */
interface CodecInfo {
  name: string;
  harnessName: string;
  package: 'model' | 'editor' | null;
  quality: { min: number; max: number; default: number; integer: boolean; ladder: number[] };
}

interface PolicyInfo {
  codecs: CodecInfo[];
  targets: string[];
  defaultTarget: string;
  taskHints: string[];
  profiles: string[];
  editor: EditorInfo | null;
  classes: Record<string, { curves?: Record<string, Record<string, PlotPoint[]>> }>;
}

interface Decision {
  codec: string;
  quality: number;
  taskClass: string;
  target: string | null;
  reason: string;
}

/** /compress with upstream=true: the stored bitstream's fields, and what came from the client and goes upstream. */
interface CompressAnswer extends Stored {
  source: { format: string; width: number; height: number; bytes: number };
  policy: Decision;
  tokens: GatewayDecision['tokens'];
  upstream: Stored['upstream'] & { tokens: number | null };
}

const KEY_STORAGE = 'vlmpress.apiKey';
const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

let policyInfo: PolicyInfo | null = null;
let file: File | null = null;
let reconUrl: string | null = null;

const gateway = (): Gateway => {
  const key = $<HTMLInputElement>('apiKey').value.trim();
  return { baseUrl: '', ...(key ? { apiKey: key } : {}) };
};

function setState(state: 'idle' | 'busy' | 'done' | 'error', status = ''): void {
  document.body.dataset['state'] = state;
  $('status').textContent = status;
  const busy = state === 'busy';
  $<HTMLButtonElement>('serverBtn').disabled = busy || !file;
  $<HTMLButtonElement>('browserBtn').disabled = busy || !file;
}

function showError(e: unknown): void {
  const box = $('error');
  let code = 'error';
  let message = e instanceof Error ? e.message : String(e);
  if (e instanceof GatewayError) {
    code = e.code;
    if (e.status === 401) message = `${message}: this gateway needs an API key (enter it above).`;
  } else if (e instanceof BrowserEncodeError) {
    code = e.code;
  }
  box.dataset['code'] = code;
  box.textContent = `${code}: ${message}`;
  box.hidden = false;
  setState('error');
}

function clearError(): void {
  const box = $('error');
  box.hidden = true;
  box.textContent = '';
  delete box.dataset['code'];
}

const fmt = (n: number | null | undefined) => (n === null || n === undefined ? '—' : n.toLocaleString('en-US'));

function setStage(
  stage: string,
  v: { bytes?: number; width?: number; height?: number; tokens?: number | null; note?: string } | null,
): void {
  const row = document.querySelector<HTMLTableRowElement>(`#stats tr[data-stage="${stage}"]`)!;
  const cell = (c: string) => row.querySelector<HTMLTableCellElement>(`.${c}`)!;
  if (!v) {
    row.querySelector('th small')?.remove();
    for (const c of ['bytes', 'size', 'bpp', 'tokens']) {
      cell(c).textContent = '';
      delete cell(c).dataset['value'];
    }
    return;
  }
  cell('bytes').textContent = fmt(v.bytes);
  const note = row.querySelector('th small') ?? row.querySelector('th')!.appendChild(document.createElement('small'));
  note.textContent = v.note ?? '';
  cell('bytes').dataset['value'] = String(v.bytes ?? '');
  cell('size').textContent = v.width ? `${v.width}×${v.height}` : '';
  cell('size').dataset['value'] = v.width ? `${v.width}x${v.height}` : '';
  const bpp = v.bytes !== undefined && v.width && v.height ? (8 * v.bytes) / (v.width * v.height) : null;
  cell('bpp').textContent = bpp === null ? '' : bpp.toFixed(3);
  cell('tokens').textContent = v.tokens === undefined ? '' : fmt(v.tokens);
  cell('tokens').dataset['value'] = v.tokens === undefined || v.tokens === null ? '' : String(v.tokens);
}

function fields(): Record<string, string> {
  const mode = document.querySelector<HTMLInputElement>('input[name="mode"]:checked')!.value;
  const out: Record<string, string> = { profile: $<HTMLSelectElement>('profile').value };
  if (mode === 'explicit') {
    out['codec'] = $<HTMLSelectElement>('codec').value;
    out['quality'] = $<HTMLInputElement>('quality').value;
  } else {
    const task = $<HTMLSelectElement>('task').value;
    if (task) out['task'] = task;
    out['target'] = $<HTMLSelectElement>('target').value;
  }
  return out;
}

function options(select: HTMLSelectElement, values: string[], selected?: string, keepFirst = false): void {
  const first = keepFirst ? [...select.options].slice(0, 1) : [];
  select.replaceChildren(...first);
  for (const v of values) select.append(new Option(v, v, false, v === selected));
}

/** The quality field takes the chosen codec's scale. */
function applyScale(): void {
  const scale = policyInfo?.codecs.find((c) => c.name === $<HTMLSelectElement>('codec').value)?.quality;
  if (!scale) return;
  const q = $<HTMLInputElement>('quality');
  q.min = String(scale.min);
  q.max = String(scale.max);
  q.step = scale.integer ? '1' : 'any';
  if (!(Number(q.value) >= scale.min && Number(q.value) <= scale.max)) q.value = String(scale.default);
}

async function loadPolicy(): Promise<void> {
  try {
    policyInfo = await callGateway<PolicyInfo>(gateway(), '/policy');
    options($<HTMLSelectElement>('profile'), policyInfo.profiles, 'openai');
    options($<HTMLSelectElement>('task'), policyInfo.taskHints, undefined, true);
    options($<HTMLSelectElement>('target'), policyInfo.targets, policyInfo.defaultTarget);
    // The gateway's kinds; first chosen: the one made with its editor package (the policy's photo codec).
    const codec = $<HTMLSelectElement>('codec');
    const initial = codec.value || policyInfo.codecs.find((c) => c.package === 'editor')?.name;
    options(
      codec,
      policyInfo.codecs.map((c) => c.name),
      initial,
    );
    applyScale();
    clearError();
    setState('idle');
  } catch (e) {
    policyInfo = null;
    showError(e);
  }
}

async function showReconstruction(id: string): Promise<void> {
  const res = await fetch(`/bitstreams/${id}/image?format=png`, {
    headers: gateway().apiKey ? { authorization: `Bearer ${gateway().apiKey}` } : {},
  });
  if (!res.ok) throw new GatewayError(res.status, `http_${res.status}`, 'the reconstruction could not be fetched');
  if (reconUrl) URL.revokeObjectURL(reconUrl);
  reconUrl = URL.createObjectURL(await res.blob());
  const img = $<HTMLImageElement>('recon');
  await new Promise<void>((resolve, reject) => {
    img.onload = () => resolve();
    img.onerror = () => reject(new Error('the reconstruction does not display'));
    img.src = reconUrl!;
  });
}

function showDecision(policy: Decision, id: string, how: string): void {
  $('reason').textContent = `${how}: ${policy.codec} quality ${policy.quality}. ${policy.reason}`;
  $('ids').textContent = `bitstream ${id}`;
  $('ids').dataset['id'] = id;
  const info = policyInfo;
  const target = policy.target ?? info?.defaultTarget ?? '0.98';
  const measure = target.startsWith('agreement:') ? 'agreement' : 'accuracy';
  const curves = info?.classes[policy.taskClass]?.curves?.[measure] ?? {};
  $('plotTitle').textContent = `Measured curves: ${policy.taskClass} photos, ${measure} kept (worst receiver), target ${target}`;
  renderPlot($('plot'), {
    curves,
    target: Number(target.replace('agreement:', '')),
    chosen: { codec: policy.codec, quality: policy.quality },
    names: Object.fromEntries((info?.codecs ?? []).map((c) => [c.harnessName, c.name])),
  });
}

async function compressOnGateway(): Promise<void> {
  if (!file) return;
  clearError();
  setState('busy', 'compressing on the gateway…');
  try {
    const form = new FormData();
    for (const [k, v] of Object.entries(fields())) form.append(k, v);
    form.append('upstream', 'true');
    form.append('image', file);
    const t0 = performance.now();
    const r = await callGateway<CompressAnswer>(gateway(), '/compress', { method: 'POST', body: form });
    await showReconstruction(r.id);
    const ms = performance.now() - t0;
    setStage('client', { bytes: r.source.bytes, width: r.source.width, height: r.source.height, tokens: r.tokens.original });
    setStage('uplink', { bytes: r.source.bytes, width: r.source.width, height: r.source.height, note: 'the original' });
    setStage('stored', { bytes: r.bytes, width: r.width, height: r.height, tokens: r.tokens.encoded });
    setStage('upstream', { ...r.upstream, note: `${r.upstream.what} ${r.upstream.format}` });
    $('saved').textContent =
      `Stored ${pct(r.bytes, r.source.bytes)} of the client's bytes; upstream ${pct(r.upstream.bytes, r.source.bytes)}.`;
    showDecision(r.policy, r.id, 'gateway');
    setState('done', `compressed on the gateway in ${ms.toFixed(0)} ms`);
  } catch (e) {
    showError(e);
  }
}

const pct = (part: number, whole: number) => `${((100 * part) / whole).toFixed(1)} %`;

async function encodeInBrowser(): Promise<void> {
  if (!file) return;
  clearError();
  setState('busy', 'encoding in the browser…');
  try {
    const r = await compressInBrowser(gateway(), file, fields());
    await showReconstruction(r.stored.id);
    const { decision, encoded, stored } = r;
    setStage('client', { bytes: file.size, ...r.original, tokens: decision.tokens.original });
    setStage('uplink', { bytes: encoded.bitstream.length, width: stored.width, height: stored.height, note: 'the bitstream' });
    setStage('stored', { bytes: stored.bytes, width: stored.width, height: stored.height, tokens: decision.tokens.encoded });
    const up = stored.upstream;
    setStage('upstream', { ...up, tokens: decision.tokens.encoded, note: `${up.what} ${up.format}` });
    $('saved').textContent =
      `Uplink: ${fmt(encoded.bitstream.length)} B instead of ${fmt(file.size)} B (${pct(encoded.bitstream.length, file.size)}), saved ${fmt(file.size - encoded.bitstream.length)} B by encoding in the browser.`;
    $('saved').dataset['uplinkSaved'] = String(file.size - encoded.bitstream.length);
    showDecision({ ...decision.policy, quality: encoded.quality }, stored.id, 'browser');
    setState('done', `encoded in the browser in ${encoded.encodeMs.toFixed(0)} ms`);
    document.body.dataset['encodeMs'] = encoded.encodeMs.toFixed(1);
  } catch (e) {
    showError(e);
  }
}

function pickFile(f: File | undefined): void {
  if (!f) return;
  file = f;
  clearError();
  for (const s of ['client', 'uplink', 'stored', 'upstream']) setStage(s, null);
  setStage('client', { bytes: f.size });
  const original = $<HTMLImageElement>('original');
  if (original.src) URL.revokeObjectURL(original.src);
  original.src = URL.createObjectURL(f);
  $<HTMLImageElement>('recon').removeAttribute('src');
  setState('idle', `${f.name}: ${fmt(f.size)} bytes`);
}

function wire(): void {
  const key = $<HTMLInputElement>('apiKey');
  key.value = sessionStorage.getItem(KEY_STORAGE) ?? '';
  key.addEventListener('change', () => {
    sessionStorage.setItem(KEY_STORAGE, key.value.trim());
    void loadPolicy();
  });
  $<HTMLInputElement>('file').addEventListener('change', (e) => pickFile((e.target as HTMLInputElement).files?.[0]));
  const drop = $('drop');
  drop.addEventListener('dragover', (e) => {
    e.preventDefault();
    drop.classList.add('over');
  });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    pickFile(e.dataTransfer?.files[0]);
  });
  for (const radio of document.querySelectorAll<HTMLInputElement>('input[name="mode"]')) {
    radio.addEventListener('change', () => {
      const explicit = radio.value === 'explicit' && radio.checked;
      if (radio.checked) {
        $('policyFields').hidden = explicit;
        $('explicitFields').hidden = !explicit;
      }
    });
  }
  $('codec').addEventListener('change', applyScale);
  $('serverBtn').addEventListener('click', () => void compressOnGateway());
  $('browserBtn').addEventListener('click', () => void encodeInBrowser());
  const split = $<HTMLInputElement>('split');
  const frame = $('frame');
  const applySplit = () => frame.style.setProperty('--split', `${split.value}%`);
  split.addEventListener('input', applySplit);
  applySplit();
  const zoom = $<HTMLSelectElement>('zoom');
  const applyZoom = () => {
    const z = zoom.value;
    frame.classList.toggle('fit', z === 'fit');
    const original = $<HTMLImageElement>('original');
    original.style.width = z === 'fit' ? '' : `${original.naturalWidth * Number(z)}px`;
  };
  zoom.addEventListener('change', applyZoom);
  $<HTMLImageElement>('original').addEventListener('load', applyZoom);
  frame.classList.add('fit');
}

wire();
setState('idle');
void loadPolicy();
