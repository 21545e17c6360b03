// The deployment-command generator. Every rule lives in src/recipe: recipe-table.json (written
// at build time by the same code that `dsserve recipe` runs) holds the options, the default
// model of each hardware, why a choice is unavailable, and the text of every combination. This
// file only keeps the page's state and looks texts up, so the page cannot disagree with the CLI.
(function () {
  'use strict';

  var table = null;
  var state = null;
  var form = document.getElementById('generator');
  var commandEl = document.getElementById('command');
  var cliEl = document.getElementById('cli-equivalent');
  var copyStatus = document.getElementById('copy-status');
  var statusEl = document.getElementById('generator-status');

  function option(name) {
    return table.options.filter(function (o) { return o.name === name; })[0];
  }

  // The key recipe::combination_key builds: "<hw> <model> <tp,dp,...> <reasoning> <toolcall>",
  // strategies in the option's item order.
  function strategies(s) {
    return option('strategy').items
      .map(function (item) { return item.id; })
      .filter(function (id) { return s.strategy.indexOf(id) >= 0; });
  }

  function key(s) {
    return [s.hardware, s.modelname, strategies(s).join(','), s.reasoningParser, s.toolcall]
      .join(' ');
  }

  function textFor(s) {
    var index = table.recipes[key(s)];
    if (index === undefined) throw new Error('no recipe for ' + key(s));
    return table.texts[index];
  }

  // The `dsserve recipe` arguments that print the same text.
  function cliFor(s) {
    var args = ['dsserve recipe', '--hardware', s.hardware, '--model', s.modelname];
    var list = strategies(s);
    if (list.some(function (id) { return id !== 'tp'; })) args.push('--strategy', list.join(','));
    if (s.reasoningParser === 'enabled') args.push('--reasoning-parser');
    if (s.toolcall === 'enabled') args.push('--tool-call-parser');
    return args.join(' ');
  }

  function unavailableReason(s, optionName, itemId) {
    var notes = table.unavailable[s.hardware + ' ' + s.modelname] || {};
    return notes[optionName + ' ' + itemId] || '';
  }

  function isSelected(s, optionName, itemId) {
    var value = s[optionName];
    return Array.isArray(value) ? value.indexOf(itemId) >= 0 : value === itemId;
  }

  function select(optionName, itemId, checked) {
    var next = JSON.parse(JSON.stringify(state));
    if (option(optionName).type === 'checkbox') {
      next[optionName] = next[optionName].filter(function (id) { return id !== itemId; });
      if (checked) next[optionName].push(itemId);
    } else {
      next[optionName] = itemId;
    }
    // As on the guide's page: new hardware keeps the model unless the model cannot run there,
    // in which case the hardware's default model takes its place.
    if (optionName === 'hardware' && unavailableReason(next, 'modelname', next.modelname)) {
      next.modelname = table.default_model[next.hardware];
    }
    state = next;
    update();
  }

  function render() {
    form.textContent = '';
    table.options.forEach(function (opt) {
      var fieldset = document.createElement('fieldset');
      fieldset.className = 'card';
      fieldset.id = 'option-' + opt.name;
      var legend = document.createElement('legend');
      legend.textContent = opt.title;
      fieldset.appendChild(legend);
      var choices = document.createElement('div');
      choices.className = 'choices';
      opt.items.forEach(function (item) {
        var id = 'choice-' + opt.name + '-' + item.id;
        var label = document.createElement('label');
        label.className = 'choice';
        label.htmlFor = id;
        label.dataset.option = opt.name;
        label.dataset.item = item.id;
        var input = document.createElement('input');
        input.type = opt.type === 'checkbox' ? 'checkbox' : 'radio';
        input.name = opt.name;
        input.value = item.id;
        input.id = id;
        input.addEventListener('change', function () {
          select(opt.name, item.id, input.checked);
        });
        var text = document.createElement('span');
        text.textContent = item.label;
        var reason = document.createElement('small');
        reason.className = 'reason';
        reason.id = id + '-reason';
        label.appendChild(input);
        label.appendChild(text);
        label.appendChild(reason);
        choices.appendChild(label);
      });
      fieldset.appendChild(choices);
      form.appendChild(fieldset);
    });
  }

  function update() {
    form.querySelectorAll('label.choice').forEach(function (label) {
      var optionName = label.dataset.option;
      var itemId = label.dataset.item;
      var input = label.querySelector('input');
      var reasonEl = label.querySelector('.reason');
      var selected = isSelected(state, optionName, itemId);
      var reason = unavailableReason(state, optionName, itemId);
      var required = optionName === 'strategy' &&
        option('strategy').items.some(function (i) { return i.id === itemId && i.required; });
      input.checked = selected;
      // A selected choice stays usable so it can be turned off; the command then says why the
      // combination is impossible, in the guide's words.
      input.disabled = required || (reason !== '' && !selected);
      label.classList.toggle('checked', selected);
      label.classList.toggle('disabled', input.disabled);
      label.classList.toggle('unavailable', reason !== '' && selected && !required);
      reasonEl.textContent = reason && !required ? reason : '';
      label.title = reason;
      if (reason && !required) {
        input.setAttribute('aria-describedby', reasonEl.id);
      } else {
        input.removeAttribute('aria-describedby');
      }
    });
    var text = textFor(state);
    commandEl.textContent = text;
    commandEl.classList.toggle('is-error', text.indexOf('# Error:') === 0);
    cliEl.textContent = cliFor(state);
    copyStatus.textContent = '';
  }

  function copy() {
    var text = commandEl.textContent;
    function done(ok) {
      copyStatus.textContent = ok ? 'Copied' : 'Press Ctrl+C to copy';
    }
    function fallback() {
      var area = document.createElement('textarea');
      area.value = text;
      area.setAttribute('readonly', '');
      area.style.position = 'absolute';
      area.style.left = '-9999px';
      document.body.appendChild(area);
      area.select();
      var ok = false;
      try { ok = document.execCommand('copy'); } catch (e) { ok = false; }
      document.body.removeChild(area);
      if (!ok) {
        var range = document.createRange();
        range.selectNodeContents(commandEl);
        var selection = window.getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
      }
      done(ok);
    }
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(text).then(function () { done(true); }, fallback);
    } else {
      fallback();
    }
  }

  document.getElementById('copy').addEventListener('click', copy);

  fetch('/static/recipe-table.json')
    .then(function (response) {
      if (!response.ok) throw new Error('HTTP ' + response.status);
      return response.json();
    })
    .then(function (data) {
      table = data;
      state = JSON.parse(JSON.stringify(table.defaults));
      render();
      update();
      statusEl.textContent = '';
      form.dataset.ready = 'true';
    })
    .catch(function (error) {
      statusEl.textContent = 'Could not load the command table: ' + error.message;
    });

  // For tests and the curious: the page's state and the lookup it uses.
  window.dsserveRecipe = {
    state: function () { return JSON.parse(JSON.stringify(state)); },
    setState: function (s) { state = JSON.parse(JSON.stringify(s)); update(); },
    textFor: textFor,
    cliFor: cliFor,
  };
})();
