/**
 * `vlmpress` command line: encode, decode and inspect VLMP bitstreams with the shipped model.
 *   vlmpress encode IN -q 4 -o OUT.vlmp   |  vlmpress encode IN --max-bytes 20000 -o OUT.vlmp
 *   vlmpress decode IN.vlmp -o OUT.png    (format by extension: .png .webp .jpg/.jpeg)
 *   vlmpress info IN.vlmp                 (JSON)
 *   vlmpress encode IN... --out-dir D -q 1,2,4   (batch: one process, one model load; D/<stem>.q<Q>.vlmp)
 *   vlmpress decode IN... --out-dir D --format png
 *   vlmpress encode --inputs-from LIST|- --out-dir D      (one path per line: any number of inputs)
 * Exit codes: 0 success, 1 bad input (the error's code is printed), 2 usage error.
 */
import { spawn } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import {
  CODEC_CHOICES,
  Codec,
  CodecError,
  DEFAULT_CODEC,
  isCodecChoice,
  isCodecError,
  type CodecChoice,
  outputFormatFromName,
  parseProviderList,
  type CodecOptions,
  type GraphOptimizationLevel,
} from '../codec/index.js';

const USAGE = `usage:
  vlmpress encode IN -o OUT.vlmp [-q QUALITY] [--max-bytes N] [--model NAME] [--codec ${CODEC_CHOICES.join('|')}]
  vlmpress decode IN.vlmp -o OUT.(png|webp|jpg) [--jpeg-quality Q]
  vlmpress info IN.vlmp
  vlmpress encode IN... --out-dir DIR [-q Q1,Q2,...] [--max-bytes N]   writes DIR/<name>.q<Q>.vlmp
  vlmpress decode IN... --out-dir DIR [--format png|webp|jpg]          writes DIR/<name>.<format>
  --inputs-from FILE|-  batch inputs from a file (or stdin), one path per line, instead of / as well as IN...
options:
  --models-dir DIR   load model packages from DIR instead of the bundled models/ (repeatable)
  --threads N        ONNX Runtime threads per session (default: ONNX Runtime's choice)
  --providers LIST   execution-provider preference, e.g. cuda,cpu (default cuda,cpu; CPU when CUDA is absent)
  --json             print the encode/decode summary as JSON`;

class UsageError extends Error {}
/** A file the CLI cannot read or write: bad input, not a usage mistake. */
class FileError extends Error {}

function parse(argv: string[]) {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      output: { type: 'string', short: 'o' },
      'out-dir': { type: 'string' },
      'inputs-from': { type: 'string' },
      format: { type: 'string' },
      codec: { type: 'string' },
      quality: { type: 'string', short: 'q' },
      'max-bytes': { type: 'string' },
      model: { type: 'string' },
      'models-dir': { type: 'string', multiple: true },
      threads: { type: 'string' },
      providers: { type: 'string' },
      optimization: { type: 'string' },
      'jpeg-quality': { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  return { values, positionals };
}

function number(name: string, text: string | undefined, integer = false): number | undefined {
  if (text === undefined) return undefined;
  const v = Number(text);
  if (text.trim() === '' || !Number.isFinite(v) || (integer && !Number.isSafeInteger(v)))
    throw new UsageError(`--${name} must be ${integer ? 'an integer' : 'a number'}, got "${text}"`);
  return v;
}

async function readInput(file: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (e) {
    throw new FileError(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

/** --codec: a kind of the codec table, each with its own quality scale (default: the learned codec). */
function codecChoice(values: ReturnType<typeof parse>['values']): { codec?: CodecChoice } {
  const c = values.codec;
  if (c === undefined || c === DEFAULT_CODEC) return {};
  if (!isCodecChoice(c)) throw new UsageError(`--codec must be ${CODEC_CHOICES.join(', ')}`);
  return { codec: c };
}

function codecOptions(values: ReturnType<typeof parse>['values']): CodecOptions {
  const options: CodecOptions = { session: {} };
  if (values['models-dir']) options.modelDirs = values['models-dir'];
  const threads = number('threads', values.threads, true);
  if (threads !== undefined) options.session!.intraOpThreads = threads;
  if (values.providers) {
    try {
      options.session!.executionProviders = parseProviderList(values.providers);
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
  }
  if (values.optimization) {
    if (!['disabled', 'basic', 'extended', 'all'].includes(values.optimization))
      throw new UsageError('--optimization must be disabled, basic, extended or all');
    options.session!.graphOptimizationLevel = values.optimization as GraphOptimizationLevel;
  }
  return options;
}

/**
 * Batch mode: many files, one model load (what the evaluation harness uses). Every output is one
 * JSON line on stdout; a file that fails is a JSON line with its error, and the exit code is 1.
 */
async function batch(command: 'encode' | 'decode', inputs: string[], values: ReturnType<typeof parse>['values']): Promise<number> {
  if (command !== 'encode' && command !== 'decode') throw new UsageError('--out-dir works with encode and decode');
  if (values.output) throw new UsageError('use either -o (one file) or --out-dir (many)');
  const dir = values['out-dir']!;
  const qualities = values.quality ? values.quality.split(',').map((q) => number('quality', q)!) : [undefined];
  const maxBytes = number('max-bytes', values['max-bytes'], true);
  const format = outputFormatFromName(`x.${values.format ?? 'png'}`);
  if (command === 'decode' && !format) throw new UsageError('--format must be png, webp, jpg or jpeg');
  const jpegQuality = number('jpeg-quality', values['jpeg-quality'], true);
  const stems = inputs.map((i) => path.basename(i).replace(/\.[^.]*$/, ''));
  if (new Set(stems).size !== stems.length) throw new UsageError('two inputs share a file name; their outputs would overwrite each other');
  await mkdir(dir, { recursive: true });
  const codec = await Codec.load(codecOptions(values));
  let failed = 0;
  const emit = (line: Record<string, unknown>) => process.stdout.write(JSON.stringify(line) + '\n');
  try {
    for (const input of inputs) {
      const stem = path.basename(input).replace(/\.[^.]*$/, '');
      try {
        const data = await readInput(input);
        if (command === 'encode') {
          for (const q of qualities) {
            const r = await codec.encodeFile(data, {
              ...codecChoice(values),
              ...(q !== undefined ? { quality: q } : {}),
              ...(maxBytes !== undefined ? { maxBytes } : {}),
              ...(values.model ? { model: values.model } : {}),
            });
            const output = path.join(dir, q === undefined ? `${stem}.vlmp` : `${stem}.q${q}.vlmp`);
            await writeFile(output, r.bitstream);
            emit({
              input,
              output,
              bytes: r.bytes,
              bpp: r.bpp,
              quality: r.quality,
              width: r.width,
              height: r.height,
              model: r.model.name,
              probes: r.probes,
              source: r.source,
            });
          }
        } else {
          const image = await codec.decodeToFile(data, format!, jpegQuality);
          const output = path.join(dir, `${stem}.${format === 'jpeg' ? 'jpg' : format}`);
          await writeFile(output, image);
          const info = codec.inspect(data);
          emit({
            input,
            output,
            bytes: image.length,
            width: info.width,
            height: info.height,
            quality: info.quality,
            model: info.model.name,
          });
        }
      } catch (e) {
        if (!isCodecError(e) && !(e instanceof FileError)) throw e;
        failed++;
        emit({ input, error: { code: isCodecError(e) ? e.code : 'file_error', message: (e as Error).message } });
      }
    }
  } finally {
    await codec.close();
  }
  return failed ? 1 : 0;
}

/** Paths listed one per line (blank lines ignored) in a file, or on stdin for "-". */
async function readInputList(source: string): Promise<string[]> {
  let text: string;
  if (source === '-') {
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    text = Buffer.concat(chunks).toString('utf8');
  } else {
    text = (await readInput(source)).toString('utf8');
  }
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter(Boolean);
}

/**
 * ONNX Runtime (onnxruntime-node 1.30) crashes with SIGSEGV while creating a session when the process
 * command line is longer than about 29 KB, which a batch over a few hundred files reaches. Such a
 * command line is handed to a child process through stdin instead, so the process that loads the
 * model always has a short one.
 */
const MAX_SAFE_ARGV_CHARS = 16 * 1024;
const ARGV_ON_STDIN = '--argv-on-stdin';

function relaunchWithArgvOnStdin(argv: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...process.execArgv, process.argv[1]!, ARGV_ON_STDIN], {
      stdio: ['pipe', 'inherit', 'inherit'],
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 + 9 : 70)));
    child.stdin.end(JSON.stringify(argv));
  });
}

async function argvFromStdin(): Promise<string[]> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  const argv: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  if (!Array.isArray(argv) || !argv.every((a) => typeof a === 'string'))
    throw new UsageError(`${ARGV_ON_STDIN} expects a JSON array of strings`);
  return argv;
}

async function main(argv: string[]): Promise<number> {
  if (argv.length === 1 && argv[0] === ARGV_ON_STDIN) argv = await argvFromStdin();
  else if (argv.reduce((n, a) => n + a.length + 1, 0) > MAX_SAFE_ARGV_CHARS) return relaunchWithArgvOnStdin(argv);
  let args: ReturnType<typeof parse>;
  try {
    args = parse(argv);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const { values, positionals } = args;
  if (values.help || positionals.length === 0) {
    process.stdout.write(USAGE + '\n');
    return values.help ? 0 : 2;
  }
  const [command, input, ...extra] = positionals;
  if (!['encode', 'decode', 'info'].includes(command!)) throw new UsageError(`unknown command "${command}"`);
  if (values['inputs-from'] !== undefined) {
    if (values['out-dir'] === undefined) throw new UsageError('--inputs-from needs --out-dir (batch mode)');
    const listed = await readInputList(values['inputs-from']);
    const inputs = [...positionals.slice(1), ...listed];
    if (inputs.length === 0) throw new UsageError(`${values['inputs-from']} lists no input file`);
    return batch(command as 'encode' | 'decode', inputs, values);
  }
  if (!input) throw new UsageError(`${command} needs an input file`);
  if (values['out-dir'] !== undefined) return batch(command as 'encode' | 'decode', [input, ...extra], values);
  if (extra.length) throw new UsageError(`unexpected arguments: ${extra.join(' ')}`);
  if (command !== 'info' && !values.output) throw new UsageError(`${command} needs -o OUTPUT`);

  const options = codecOptions(values);
  const outputFormat = values.output && command === 'decode' ? outputFormatFromName(values.output) : undefined;
  if (command === 'decode' && !outputFormat) throw new UsageError('decode output must end in .png, .webp, .jpg or .jpeg');
  const quality = number('quality', values.quality);
  const maxBytes = number('max-bytes', values['max-bytes'], true);
  const jpegQuality = number('jpeg-quality', values['jpeg-quality'], true);

  const data = await readInput(input);
  const codec = await Codec.load(options);
  try {
    if (command === 'info') {
      process.stdout.write(JSON.stringify(codec.inspect(data), null, 2) + '\n');
      return 0;
    }
    if (command === 'encode') {
      const encodeOptions: { quality?: number; maxBytes?: number; model?: string; codec?: CodecChoice } = {
        ...codecChoice(values),
      };
      if (quality !== undefined) encodeOptions.quality = quality;
      if (maxBytes !== undefined) encodeOptions.maxBytes = maxBytes;
      if (values.model) encodeOptions.model = values.model;
      const r = await codec.encodeFile(data, encodeOptions);
      await writeFile(values.output!, r.bitstream);
      const summary = {
        output: values.output,
        bytes: r.bytes,
        bpp: r.bpp,
        quality: r.quality,
        width: r.width,
        height: r.height,
        model: r.model.name,
        probes: r.probes,
        source: r.source,
      };
      process.stdout.write(
        values.json
          ? JSON.stringify(summary) + '\n'
          : `${values.output}: ${r.bytes} bytes, ${r.bpp.toFixed(4)} bpp, quality ${r.quality}, ${r.width}x${r.height} (from ${r.source.bytes} bytes of ${r.source.format})\n`,
      );
      return 0;
    }
    const image = await codec.decodeToFile(data, outputFormat!, jpegQuality);
    await writeFile(values.output!, image);
    const info = codec.inspect(data);
    const summary = {
      output: values.output,
      bytes: image.length,
      width: info.width,
      height: info.height,
      quality: info.quality,
      model: info.model.name,
    };
    process.stdout.write(
      values.json
        ? JSON.stringify(summary) + '\n'
        : `${values.output}: ${info.width}x${info.height} ${outputFormat}, ${image.length} bytes\n`,
    );
    return 0;
  } finally {
    await codec.close();
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    if (e instanceof UsageError) {
      process.stderr.write(`vlmpress: ${e.message}\n${USAGE}\n`);
      process.exitCode = 2;
    } else if (e instanceof FileError) {
      process.stderr.write(`vlmpress: ${e.message}\n`);
      process.exitCode = 1;
    } else if (isCodecError(e)) {
      process.stderr.write(`vlmpress: ${(e as CodecError).code}: ${(e as CodecError).message}\n`);
      process.exitCode = 1;
    } else {
      process.stderr.write(`vlmpress: internal error: ${(e as Error).stack ?? String(e)}\n`);
      process.exitCode = 70;
    }
  },
);
