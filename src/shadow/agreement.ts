/**
 * Whether two LVLM answers to the same request agree: the answer on the client's original images and
 * the answer on compressed ones. The rule, by the shape of the original answer:
 * - tool calls: the same tools in the same order, with the same arguments (JSON compared by value);
 * - a short answer (at most SHORT_ANSWER_WORDS words once normalised): the normalised words are equal
 *   ("A tabby cat." = "tabby cat");
 * - a longer one: token F1 over the normalised words (the harmonic mean of the shared words' share of
 *   each answer, counted with multiplicity, as in SQuAD's F1) at least F1_AGREEMENT (0.9).
 * Normalisation is eval/vlmpress_eval/lvlm.py's: lower case, punctuation and the articles a/an/the
 * removed, spaces collapsed, so the gateway and the offline harness judge the same way.
 */

import type { Answer } from '../lvlm-proxy/apis/dialect.js';

export type { Answer };

export const SHORT_ANSWER_WORDS = 5;
/**
 * Two longer answers agree at F1 ≥ 0.9: in a ten-word description one word changed or moved still
 * agrees, two changed words (another object: "red car" for "blue bicycle") do not. Token F1 cannot
 * tell a changed noun from a changed article-like word, so a lower threshold would pass answers that
 * name other things (test/shadow/agreement.test.ts holds examples of each).
 */
export const F1_AGREEMENT = 0.9;

export function normalisedWords(text: string): string[] {
  return text
    .toLowerCase()
    .replace(/[^\p{L}\p{N}_\s]/gu, ' ')
    .replace(/\b(a|an|the)\b/g, ' ')
    .split(/\s+/)
    .filter(Boolean);
}

/** Token F1 of two word lists (1 when both are empty). */
export function tokenF1(a: string[], b: string[]): number {
  if (a.length === 0 && b.length === 0) return 1;
  if (a.length === 0 || b.length === 0) return 0;
  const counts = new Map<string, number>();
  for (const w of a) counts.set(w, (counts.get(w) ?? 0) + 1);
  let shared = 0;
  for (const w of b) {
    const n = counts.get(w) ?? 0;
    if (n > 0) {
      shared++;
      counts.set(w, n - 1);
    }
  }
  if (shared === 0) return 0;
  const precision = shared / b.length;
  const recall = shared / a.length;
  return (2 * precision * recall) / (precision + recall);
}

/** JSON text compared by value (key order and spacing ignored); text that is not JSON, by its words. */
function canonical(args: string): string {
  const sort = (v: unknown): unknown =>
    Array.isArray(v)
      ? v.map(sort)
      : v && typeof v === 'object'
        ? Object.fromEntries(
            Object.entries(v as Record<string, unknown>)
              .sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0))
              .map(([k, x]) => [k, sort(x)]),
          )
        : v;
  try {
    return JSON.stringify(sort(JSON.parse(args)));
  } catch {
    return normalisedWords(args).join(' ');
  }
}

export interface Verdict {
  agree: boolean;
  rule: 'tool_calls' | 'exact' | 'token_f1';
  /** 1 or 0 for the exact rules; the F1 for longer answers */
  score: number;
}

export function compareAnswers(original: Answer, other: Answer): Verdict {
  if (original.toolCalls.length > 0 || other.toolCalls.length > 0) {
    const same =
      original.toolCalls.length === other.toolCalls.length &&
      original.toolCalls.every(
        (c, i) => c.name === other.toolCalls[i]!.name && canonical(c.arguments) === canonical(other.toolCalls[i]!.arguments),
      );
    return { agree: same, rule: 'tool_calls', score: same ? 1 : 0 };
  }
  const a = normalisedWords(original.text);
  const b = normalisedWords(other.text);
  if (a.length <= SHORT_ANSWER_WORDS) {
    const same = a.join(' ') === b.join(' ');
    return { agree: same, rule: 'exact', score: same ? 1 : 0 };
  }
  const f1 = tokenF1(a, b);
  // the tolerance keeps 9 words of 10 (F1 0.9 exactly) on the agreeing side of the threshold
  return { agree: f1 >= F1_AGREEMENT - 1e-9, rule: 'token_f1', score: f1 };
}
