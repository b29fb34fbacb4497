// An agent loop through the official OpenAI Node SDK: tools, a forced call (tool_choice
// "required" or a named function), the call's arguments checked against the tool's schema by
// this test, the result sent back as a `role: "tool"` message with its tool_call_id, then a final
// answer; the same call streamed as OpenAI streams calls (deltas by index: id and name, then
// argument fragments). Run by run_with_server.sh on a model whose vocabulary has [TOOL_CALLS]
// (BRISE_NODE_GGUF, random weights): only the grammar makes its calls well formed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';

const url = process.env.BRISE_URL;
const modelId = process.env.BRISE_MODEL_ID;
if (!url || !modelId) throw new Error('set BRISE_URL and BRISE_MODEL_ID (see run_with_server.sh)');

const client = new OpenAI({
  baseURL: url + '/v1',
  apiKey: process.env.BRISE_API_KEY || 'x',
  maxRetries: 0,
  timeout: 120_000,
});
const opts = { timeout: 120_000 };

const tools = [
  {
    type: 'function',
    function: {
      name: 'get_weather',
      description: 'The current weather in a city',
      parameters: {
        type: 'object',
        properties: {
          city: { type: 'string' },
          unit: { type: 'string', enum: ['celsius', 'fahrenheit'] },
        },
        required: ['city', 'unit'],
        additionalProperties: false,
      },
    },
  },
  {
    type: 'function',
    function: {
      name: 'get_time',
      description: 'The local time in a city',
      parameters: {
        type: 'object',
        properties: { city: { type: 'string' } },
        required: ['city'],
        additionalProperties: false,
      },
    },
  },
];

// The tool's schema, checked here rather than by the code under test.
function checkArguments(name, text) {
  const args = JSON.parse(text);
  assert.equal(typeof args, 'object');
  assert.equal(typeof args.city, 'string', text);
  if (name === 'get_weather') {
    assert.deepEqual(Object.keys(args).sort(), ['city', 'unit'], text);
    assert.ok(['celsius', 'fahrenheit'].includes(args.unit), text);
  } else {
    assert.deepEqual(Object.keys(args), ['city'], text);
  }
  return args;
}

const question = [
  { role: 'system', content: 'You answer with the weather.' },
  { role: 'user', content: 'What is the weather in Paris?' },
];

test('a forced call, its result as role "tool", then a final answer', opts, async () => {
  for (const seed of [1, 2, 3]) {
    const first = await client.chat.completions.create({
      model: modelId, messages: question, tools, tool_choice: 'required',
      max_tokens: 96, temperature: 1, seed,
    });
    const choice = first.choices[0];
    assert.equal(choice.finish_reason, 'tool_calls', `seed ${seed}: ${JSON.stringify(choice.message)}`);
    const calls = choice.message.tool_calls;
    assert.ok(calls.length >= 1);
    const results = [];
    for (const c of calls) {
      assert.equal(c.type, 'function');
      assert.match(c.id, /^[a-zA-Z0-9]{9}$/, 'a Mistral call id');
      assert.ok(['get_weather', 'get_time'].includes(c.function.name), c.function.name);
      const args = checkArguments(c.function.name, c.function.arguments);
      results.push({ role: 'tool', tool_call_id: c.id, content: JSON.stringify({ city: args.city, temperature: 21 }) });
    }
    const second = await client.chat.completions.create({
      model: modelId,
      messages: [...question, choice.message, ...results],
      tools, tool_choice: 'none', max_tokens: 24, temperature: 1, seed,
    });
    const answer = second.choices[0];
    assert.ok(['stop', 'length'].includes(answer.finish_reason), answer.finish_reason);
    assert.equal(answer.message.tool_calls ?? undefined, undefined, 'no call under tool_choice "none"');
    assert.equal(typeof answer.message.content, 'string');
    // The tool result was read: the second prompt is longer than the first by at least its text.
    assert.ok(second.usage.prompt_tokens > first.usage.prompt_tokens, 'the call and its result are in the prompt');
  }
});

test('a named function is the one called, streamed as OpenAI streams calls', opts, async () => {
  const request = {
    model: modelId, messages: question, tools, max_tokens: 96, temperature: 1, seed: 7,
    tool_choice: { type: 'function', function: { name: 'get_time' } },
  };
  const whole = (await client.chat.completions.create(request)).choices[0];
  assert.equal(whole.finish_reason, 'tool_calls');
  for (const c of whole.message.tool_calls) {
    assert.equal(c.function.name, 'get_time');
    checkArguments('get_time', c.function.arguments);
  }
  // Streamed: the same calls (same seed, same tokens), put together from the deltas.
  const stream = await client.chat.completions.create({ ...request, stream: true });
  const calls = [];
  let finish = null;
  for await (const chunk of stream) {
    const ch = chunk.choices[0];
    if (!ch) continue;
    for (const d of ch.delta?.tool_calls ?? []) {
      assert.ok(Number.isInteger(d.index));
      if (!calls[d.index]) {
        assert.match(d.id, /^[a-zA-Z0-9]{9}$/, 'the first delta of a call carries its id');
        assert.equal(d.type, 'function');
        calls[d.index] = { name: d.function.name, arguments: '' };
      }
      calls[d.index].arguments += d.function?.arguments ?? '';
    }
    if (ch.finish_reason) finish = ch.finish_reason;
  }
  assert.equal(finish, 'tool_calls');
  assert.deepEqual(calls, whole.message.tool_calls.map((c) => ({ name: c.function.name, arguments: c.function.arguments })));
});
