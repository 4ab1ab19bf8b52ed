/**
 * Which task class a request belongs to, from the client's hint or, failing that, its prompt:
 * rules first, because they are cheap, explainable and easy to correct. Reading text wins over
 * fine detail, which wins over general understanding (the classes need increasing fidelity in
 * that order on the measured curves: see the model's policy.json).
 */
export const TASK_CLASSES = ['general', 'text', 'detail'] as const;
export type TaskClass = (typeof TASK_CLASSES)[number];

/** hint values a client may send as `task` */
const HINTS: Record<string, TaskClass> = {
  general: 'general',
  caption: 'general',
  classify: 'general',
  vqa: 'general',
  text: 'text',
  ocr: 'text',
  document: 'text',
  screenshot: 'text',
  chart: 'text',
  detail: 'detail',
  count: 'detail',
  inspection: 'detail',
};
export const TASK_HINTS = Object.keys(HINTS);

const TEXT =
  /\b(read|reads|reading|transcrib\w*|ocr|text|texts|written|writing|says?|spell\w*|words?|letters?|characters?|documents?|receipts?|invoices?|tables?|spreadsheets?|screenshots?|menus?|labels?|signs?|signage|code|digits?|prices?|totals?|amounts?|dates?|handwrit\w*|licen[cs]e plates?|serial numbers?|charts?|graphs?|diagrams?|forms?|pages?|slides?|subtitles?|captions? text|what does it say)\b/i;
const DETAIL =
  /\b(count|counting|how many|number of|tiny|small|smallest|fine|details?|detailed|defects?|scratch\w*|cracks?|flaws?|damage\w*|measure\w*|exact\w*|precise\w*|zoom\w*|texture|pattern)\b/i;

export function classifyTask(input: {
  task?: string | undefined;
  prompt?: string | undefined;
  image?: { textLike: boolean; background: number; edges: number } | null | undefined;
}): { taskClass: TaskClass; reason: string } {
  if (input.task) {
    const c = HINTS[input.task.toLowerCase()];
    if (c) return { taskClass: c, reason: `task hint "${input.task}"` };
  }
  const prompt = input.prompt ?? '';
  const text = TEXT.exec(prompt);
  if (text) return { taskClass: 'text', reason: `prompt mentions "${text[0]}"` };
  const detail = DETAIL.exec(prompt);
  if (detail) return { taskClass: 'detail', reason: `prompt mentions "${detail[0]}"` };
  // No cue in words: the image itself may still be a page of text or a screenshot.
  if (input.image?.textLike)
    return {
      taskClass: 'text',
      reason: `the image looks like text (background ${input.image.background.toFixed(2)}, edges ${input.image.edges.toFixed(3)})`,
    };
  return { taskClass: 'general', reason: prompt ? 'no text or detail cue in the prompt' : 'no prompt or task hint' };
}
