// The playground: sends one chat request to the server this page came from and shows the SSE
// stream as it arrives — thinking (delta.reasoning_content) apart from the answer
// (delta.content), and tool calls (delta.tool_calls, arguments concatenated per index).
(function () {
  'use strict';

  // The guide's tool-calling example (DeepSeek-V3.2 cookbook, "Tool Calling").
  var EXAMPLE_TOOLS = [
    {
      type: 'function',
      function: {
        name: 'get_weather',
        description: 'Get the current weather for a location',
        parameters: {
          type: 'object',
          properties: {
            location: { type: 'string', description: 'The city name' },
            unit: {
              type: 'string',
              enum: ['celsius', 'fahrenheit'],
              description: 'Temperature unit'
            }
          },
          required: ['location']
        }
      }
    }
  ];

  var $ = function (id) { return document.getElementById(id); };
  var form = $('chat-form');
  var toolsEl = $('tools');
  var toolsError = $('tools-error');
  var statusEl = $('chat-status');
  var sendButton = $('send');
  var stopButton = $('stop');
  var controller = null;

  toolsEl.value = JSON.stringify(EXAMPLE_TOOLS, null, 2);

  // Fill in the served model's name; the server echoes whatever is sent, so "default" works too.
  fetch('/v1/models').then(function (r) { return r.ok ? r.json() : null; }).then(function (body) {
    if (body && body.data && body.data.length && $('model').value === 'default') {
      $('model').value = body.data[0].id;
    }
  }).catch(function () { /* not served by dsserve: keep "default" */ });

  function resetReply() {
    $('thinking-text').textContent = '';
    $('answer-text').textContent = '';
    $('tool-calls').textContent = '';
    $('thinking-out').hidden = true;
    $('answer-out').hidden = true;
    $('tool-calls-out').hidden = true;
    statusEl.textContent = '';
  }

  function toolCallView(index) {
    var id = 'tool-call-' + index;
    var item = document.getElementById(id);
    if (!item) {
      item = document.createElement('li');
      item.id = id;
      var name = document.createElement('strong');
      name.className = 'tool-name';
      var args = document.createElement('code');
      args.className = 'tool-arguments';
      item.appendChild(name);
      item.appendChild(document.createTextNode(' '));
      item.appendChild(args);
      $('tool-calls').appendChild(item);
      $('tool-calls-out').hidden = false;
    }
    return item;
  }

  function handleChunk(chunk) {
    if (chunk.error) {
      throw new Error(chunk.error.message || JSON.stringify(chunk.error));
    }
    (chunk.choices || []).forEach(function (choice) {
      var delta = choice.delta || {};
      if (delta.reasoning_content) {
        $('thinking-out').hidden = false;
        $('thinking-text').textContent += delta.reasoning_content;
      }
      if (delta.content) {
        $('answer-out').hidden = false;
        $('answer-text').textContent += delta.content;
      }
      (delta.tool_calls || []).forEach(function (call) {
        var item = toolCallView(call.index === undefined || call.index === null ? 0 : call.index);
        var fn = call.function || {};
        if (fn.name) item.querySelector('.tool-name').textContent = fn.name;
        if (fn.arguments) item.querySelector('.tool-arguments').textContent += fn.arguments;
      });
      if (choice.finish_reason) {
        statusEl.dataset.finish = choice.finish_reason;
        statusEl.textContent = 'Finished: ' + choice.finish_reason;
      }
    });
    if (chunk.usage) {
      statusEl.textContent += (statusEl.textContent ? ' · ' : '') +
        chunk.usage.prompt_tokens + ' prompt + ' + chunk.usage.completion_tokens +
        ' completion tokens';
    }
  }

  // Splits the SSE byte stream into `data: ` payloads; returns false at [DONE].
  function readEvents(buffer, onData) {
    var events = buffer.split('\n\n');
    var rest = events.pop();
    for (var i = 0; i < events.length; i++) {
      var lines = events[i].split('\n');
      for (var j = 0; j < lines.length; j++) {
        var line = lines[j].replace(/\r$/, '');
        if (line.indexOf('data: ') !== 0) continue;
        var payload = line.slice(6);
        if (payload === '[DONE]') return { rest: '', done: true };
        onData(JSON.parse(payload));
      }
    }
    return { rest: rest, done: false };
  }

  function buildRequest() {
    var body = {
      model: $('model').value || 'default',
      messages: [{ role: 'user', content: $('prompt').value }],
      stream: true,
      stream_options: { include_usage: true },
      max_tokens: parseInt($('max-tokens').value, 10) || 256,
      chat_template_kwargs: { thinking: $('thinking').checked }
    };
    toolsError.textContent = '';
    if ($('use-tools').checked) {
      var tools;
      try {
        tools = JSON.parse(toolsEl.value);
      } catch (e) {
        $('tools-details').open = true;
        toolsError.textContent = 'Tools are not valid JSON: ' + e.message;
        return null;
      }
      if (!Array.isArray(tools)) {
        $('tools-details').open = true;
        toolsError.textContent = 'Tools must be a JSON array.';
        return null;
      }
      body.tools = tools;
    }
    return body;
  }

  async function send(event) {
    event.preventDefault();
    var body = buildRequest();
    if (!body) return;
    resetReply();
    statusEl.textContent = 'Waiting for the server…';
    delete statusEl.dataset.finish;
    controller = new AbortController();
    sendButton.disabled = true;
    stopButton.disabled = false;
    try {
      var response = await fetch('/v1/chat/completions', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(body),
        signal: controller.signal
      });
      if (!response.ok) {
        var text = await response.text();
        var message = text;
        try { message = JSON.parse(text).message || text; } catch (e) { /* not JSON */ }
        throw new Error('HTTP ' + response.status + ': ' + message);
      }
      statusEl.textContent = 'Streaming…';
      var reader = response.body.getReader();
      var decoder = new TextDecoder();
      var buffer = '';
      for (;;) {
        var part = await reader.read();
        if (part.done) break;
        buffer += decoder.decode(part.value, { stream: true });
        var result = readEvents(buffer, handleChunk);
        buffer = result.rest;
        if (result.done) break;
      }
      if (statusEl.textContent === 'Streaming…') statusEl.textContent = 'Done';
    } catch (error) {
      statusEl.textContent = error.name === 'AbortError' ? 'Stopped' : 'Error: ' + error.message;
    } finally {
      controller = null;
      sendButton.disabled = false;
      stopButton.disabled = true;
    }
  }

  form.addEventListener('submit', send);
  stopButton.addEventListener('click', function () {
    if (controller) controller.abort();
  });
})();
