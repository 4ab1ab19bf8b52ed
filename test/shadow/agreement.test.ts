/** The rule that says whether an answer on compressed images agrees with the answer on the originals. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compareAnswers, normalisedWords, tokenF1, type Answer } from '../../src/shadow/agreement.js';

const text = (t: string): Answer => ({ text: t, toolCalls: [] });

describe('answer agreement', () => {
  it('normalises as the offline harness does: case, punctuation and articles do not count', () => {
    assert.deepEqual(normalisedWords('A Tabby-cat, on THE mat!'), ['tabby', 'cat', 'on', 'mat']);
    assert.deepEqual(compareAnswers(text('A cat.'), text('cat')), { agree: true, rule: 'exact', score: 1 });
    assert.equal(compareAnswers(text('tabby cat'), text('tiger cat')).agree, false);
    // Short answers must match word for word: "cat" is not "a cat on a mat".
    assert.equal(compareAnswers(text('cat'), text('a cat on a mat')).agree, false);
  });

  it('takes token F1 ≥ 0.9 for longer answers: a word changed agrees, another object does not', () => {
    const original = 'The photo shows a red car parked on the street next to a tree.';
    assert.equal(compareAnswers(text(original), text(original.replace('on the street', 'in the street'))).agree, true);
    const other = compareAnswers(text(original), text(original.replace('red car', 'blue bicycle')));
    assert.equal(other.rule, 'token_f1');
    assert.equal(other.agree, false);
    assert.ok(Math.abs(other.score - 0.8) < 1e-9, String(other.score));
    assert.equal(tokenF1([], []), 1);
    assert.equal(tokenF1(['a'], []), 0);
    // Multiplicity counts: "very very good" against "very good" shares two of three words.
    assert.ok(Math.abs(tokenF1(['very', 'very', 'good'], ['very', 'good']) - 0.8) < 1e-9);
  });

  it('compares tool calls by name and by argument value, whatever the key order', () => {
    const call = (name: string, args: string): Answer => ({ text: '', toolCalls: [{ name, arguments: args }] });
    assert.equal(compareAnswers(call('zoom', '{"x": 1, "y": 2}'), call('zoom', '{"y":2,"x":1}')).agree, true);
    assert.equal(compareAnswers(call('zoom', '{"x": 1}'), call('zoom', '{"x": 2}')).agree, false);
    assert.equal(compareAnswers(call('zoom', '{}'), call('crop', '{}')).agree, false);
    assert.deepEqual(compareAnswers(call('zoom', '{}'), text('I would zoom in.')), { agree: false, rule: 'tool_calls', score: 0 });
  });
});
