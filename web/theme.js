// Runs before the page paints: applies the saved colour scheme (or the system's) so the page
// never flashes light in dark mode; then wires the toggle button.
(function () {
  var saved = null;
  try { saved = localStorage.getItem('dsserve-theme'); } catch (e) { /* storage disabled */ }
  var dark = saved ? saved === 'dark'
    : window.matchMedia && window.matchMedia('(prefers-color-scheme: dark)').matches;
  document.documentElement.setAttribute('data-theme', dark ? 'dark' : 'light');
})();

document.addEventListener('DOMContentLoaded', function () {
  var button = document.getElementById('theme-toggle');
  var root = document.documentElement;
  function show() {
    var dark = root.getAttribute('data-theme') === 'dark';
    button.setAttribute('aria-pressed', dark ? 'true' : 'false');
    button.textContent = dark ? 'Light mode' : 'Dark mode';
  }
  button.addEventListener('click', function () {
    var next = root.getAttribute('data-theme') === 'dark' ? 'light' : 'dark';
    root.setAttribute('data-theme', next);
    try { localStorage.setItem('dsserve-theme', next); } catch (e) { /* storage disabled */ }
    show();
  });
  show();
});
