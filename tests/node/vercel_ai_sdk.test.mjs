// brise serve through the Vercel AI SDK (`ai` with `@ai-sdk/openai-compatible`, schemas in zod):
// an agent loop with a forced tool call (generateText, toolChoice "required", the tool run by the
// SDK, its result sent back, then a final answer) and generateObject. Run by run_with_server.sh
// on a model whose vocabulary has [TOOL_CALLS] (BRISE_NODE_GGUF, random weights): only the
// grammar makes its calls and objects valid, and the SDK itself validates them against the zod
// schemas (it throws on a call or an object that does not satisfy its schema).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { generateObject, generateText, stepCountIs, tool } from 'ai';
import { z } from 'zod';

const url = process.env.BRISE_URL;
const modelId = process.env.BRISE_MODEL_ID;
if (!url || !modelId) throw new Error('set BRISE_URL and BRISE_MODEL_ID (see run_with_server.sh)');

const brise = createOpenAICompatible({
  name: 'brise',
  baseURL: url + '/v1',
  apiKey: process.env.BRISE_API_KEY || 'x',
  supportsStructuredOutputs: true, // response_format json_schema, as brise enforces it
});
const model = brise.chatModel(modelId);
const opts = { timeout: 120_000 };

test('generateText: a forced tool call, the tool run, its result sent back, a final answer', opts, async () => {
  for (const seed of [1, 2, 3]) {
    const ran = [];
    const weather = tool({
      description: 'The current weather in a city',
      inputSchema: z.object({
        city: z.string().describe('the city'),
        unit: z.enum(['celsius', 'fahrenheit']),
        days: z.array(z.boolean()).max(2).optional(),
      }),
      execute: async (input) => {
        ran.push(input);
        return { city: input.city, temperature: 21, unit: input.unit };
      },
    });
    const r = await generateText({
      model,
      tools: { get_weather: weather },
      toolChoice: 'required',
      // The loop: a forced call first, then an answer that may not call again.
      prepareStep: ({ stepNumber }) => (stepNumber === 0 ? {} : { toolChoice: 'none' }),
      stopWhen: stepCountIs(2),
      system: 'You answer with the weather.',
      prompt: 'What is the weather in Paris?',
      maxOutputTokens: 96,
      temperature: 1,
      seed,
      maxRetries: 0,
    });
    assert.equal(r.steps.length, 2, `seed ${seed}: two steps (call, answer)`);
    const [call, answer] = r.steps;
    assert.equal(call.finishReason, 'tool-calls', `seed ${seed}: ${JSON.stringify(call.content)}`);
    assert.ok(call.toolCalls.length >= 1, 'at least one call');
    for (const c of call.toolCalls) {
      assert.equal(c.toolName, 'get_weather');
      assert.ok(!c.invalid, `seed ${seed}: the SDK found the call valid: ${JSON.stringify(c)}`);
      assert.equal(typeof c.toolCallId, 'string');
      assert.match(c.toolCallId, /^[a-zA-Z0-9]{9}$/, 'a Mistral call id');
    }
    assert.equal(ran.length, call.toolCalls.length, 'the SDK ran each call');
    assert.deepEqual(call.toolResults.map((t) => t.toolCallId), call.toolCalls.map((c) => c.toolCallId));
    // The second request carried the call and its result (role "tool"), and brise took them.
    const sent = JSON.parse(typeof answer.request.body === 'string' ? answer.request.body : JSON.stringify(answer.request.body));
    const toolMessages = sent.messages.filter((m) => m.role === 'tool');
    assert.equal(toolMessages.length, call.toolCalls.length);
    assert.equal(toolMessages[0].tool_call_id, call.toolCalls[0].toolCallId);
    assert.equal(answer.toolCalls.length, 0, 'no call under toolChoice "none"');
    assert.ok(['stop', 'length'].includes(answer.finishReason), answer.finishReason);
    assert.equal(typeof r.text, 'string');
    assert.equal(r.text, answer.text);
    assert.ok(r.totalUsage.outputTokens > 0);
  }
});

test('generateObject: a zod schema as response_format json_schema', opts, async () => {
  const schema = z.object({
    name: z.string(),
    mood: z.enum(['happy', 'sad']),
    age: z.number().optional(),
    tags: z.array(z.string()).max(2),
    pet: z.object({ kind: z.literal('cat'), indoor: z.boolean() }).nullable(),
  });
  for (const seed of [1, 2, 3, 4]) {
    const r = await generateObject({
      model,
      schema,
      schemaName: 'character',
      prompt: 'A story character as JSON',
      maxOutputTokens: 80,
      temperature: 1,
      seed,
      maxRetries: 0,
    });
    // generateObject has parsed and validated the object with zod (it throws otherwise).
    assert.deepEqual(schema.parse(r.object), r.object);
    assert.equal(r.finishReason, 'stop', `seed ${seed}: a whole object, not a cut`);
    const sent = JSON.parse(typeof r.request.body === 'string' ? r.request.body : JSON.stringify(r.request.body));
    assert.equal(sent.response_format.type, 'json_schema', 'the schema went to the server');
  }
});
