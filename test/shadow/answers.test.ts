/** Each route's replay settings and answer reader: what shadow evaluation sends and reads back. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { chatReplay, responsesReplay } from '../../src/lvlm-proxy/apis/openai.js';
import { messagesReplay } from '../../src/lvlm-proxy/apis/anthropic.js';
import { generateContentReplay } from '../../src/lvlm-proxy/apis/gemini.js';

describe('route replays', () => {
  it('make each request non-streaming and deterministic, keeping max tokens', () => {
    const chat: Record<string, unknown> = {
      model: 'm',
      stream: true,
      stream_options: { include_usage: true },
      temperature: 0.7,
      top_p: 0.9,
      max_tokens: 50,
    };
    chatReplay.deterministic(chat);
    assert.deepEqual(chat, { model: 'm', temperature: 0, seed: 0, n: 1, max_tokens: 50 });
    const responses: Record<string, unknown> = { model: 'm', stream: true, max_output_tokens: 20 };
    responsesReplay.deterministic(responses);
    assert.deepEqual(responses, { model: 'm', max_output_tokens: 20, temperature: 0, store: false });
    const messages: Record<string, unknown> = { model: 'c', stream: true, temperature: 1, top_k: 5, max_tokens: 64 };
    messagesReplay.deterministic(messages);
    assert.deepEqual(messages, { model: 'c', temperature: 0, max_tokens: 64 });
    const gemini: Record<string, unknown> = { contents: [], generationConfig: { temperature: 1, topP: 0.5, maxOutputTokens: 10 } };
    generateContentReplay.deterministic(gemini);
    assert.deepEqual(gemini, { contents: [], generationConfig: { maxOutputTokens: 10, temperature: 0, seed: 0, candidateCount: 1 } });
    const rest: Record<string, unknown> = { contents: [], generation_config: { max_output_tokens: 10 } };
    generateContentReplay.deterministic(rest);
    assert.deepEqual(rest.generation_config, { max_output_tokens: 10, temperature: 0, seed: 0, candidate_count: 1 });
  });

  it('read text, tool calls and billed tokens from each API’s answer', () => {
    assert.deepEqual(
      chatReplay.answer({
        choices: [{ message: { content: null, tool_calls: [{ type: 'function', function: { name: 'zoom', arguments: '{"x":1}' } }] } }],
        usage: { prompt_tokens: 900, completion_tokens: 12, total_tokens: 912 },
      }),
      { answer: { text: '', toolCalls: [{ name: 'zoom', arguments: '{"x":1}' }] }, tokens: 912 },
    );
    assert.deepEqual(
      responsesReplay.answer({
        output: [
          { type: 'reasoning', summary: [] },
          { type: 'message', content: [{ type: 'output_text', text: 'A cat.' }] },
        ],
        usage: { input_tokens: 100, output_tokens: 3, total_tokens: 103 },
      }),
      { answer: { text: 'A cat.', toolCalls: [] }, tokens: 103 },
    );
    assert.deepEqual(
      messagesReplay.answer({
        content: [
          { type: 'text', text: 'Let me look.' },
          { type: 'tool_use', id: 't', name: 'crop', input: { box: [1, 2] } },
        ],
        usage: { input_tokens: 1600, output_tokens: 20 },
      }),
      { answer: { text: 'Let me look.', toolCalls: [{ name: 'crop', arguments: '{"box":[1,2]}' }] }, tokens: 1620 },
    );
    assert.deepEqual(
      generateContentReplay.answer({
        candidates: [{ content: { parts: [{ text: 'thinking', thought: true }, { text: 'A ' }, { text: 'dog.' }] } }],
        usageMetadata: { promptTokenCount: 268, candidatesTokenCount: 2, totalTokenCount: 270 },
      }),
      { answer: { text: 'A dog.', toolCalls: [] }, tokens: 270 },
    );
    assert.equal(chatReplay.answer({ error: { message: 'x' } }), null);
    assert.equal(messagesReplay.answer({ content: [], usage: null })?.tokens, null);
  });
});
