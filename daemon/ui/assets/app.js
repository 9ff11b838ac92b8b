// hoard's dashboard: live install progress (Server-Sent Events from /events) and filtering of
// the package list as you type. Everything else is rendered by the daemon.
'use strict';

(function () {
  const state = document.getElementById('live-state');
  const list = document.getElementById('live-list');
  const rows = new Map();

  function row(project) {
    let li = rows.get(project);
    if (!li) {
      const quiet = list.querySelector('.quiet');
      if (quiet) quiet.remove();
      li = document.createElement('li');
      li.className = 'install';
      li.dataset.project = project;
      const name = document.createElement('code');
      name.textContent = project;
      const what = document.createElement('span');
      what.className = 'what';
      li.append(name, ' ', what);
      list.prepend(li);
      rows.set(project, li);
    }
    return li;
  }

  function show(e) {
    const li = row(e.project);
    const what = li.querySelector('.what');
    li.dataset.state = e.type;
    switch (e.type) {
      case 'started': what.textContent = 'started'; break;
      case 'progress':
        what.textContent = e.phase + ' ' + e.done + (e.total ? '/' + e.total : '') +
          (e.finished ? ' done' : '');
        break;
      case 'warning': li.title = e.message; break;
      case 'summary':
        what.textContent = e.up_to_date ? 'up to date' :
          e.added + ' added, ' + e.removed + ' removed (' + e.total_packages + ' packages)';
        break;
      case 'finished':
        li.dataset.state = e.message.startsWith('failed') ? 'failed' : 'finished';
        what.textContent = e.message + ' (reload to see it)';
        break;
    }
  }

  if (window.EventSource) {
    const es = new EventSource('/events');
    es.onopen = () => { document.body.dataset.live = 'connected'; state.textContent = '● live'; };
    es.onerror = () => { document.body.dataset.live = 'lost'; state.textContent = '○ daemon gone?'; };
    es.addEventListener('install', (m) => show(JSON.parse(m.data)));
  }

  const q = document.getElementById('q');
  const table = document.getElementById('packages');
  const count = document.getElementById('count');
  if (q && table) {
    q.addEventListener('input', () => {
      const needle = q.value.trim().toLowerCase();
      let shown = 0;
      for (const tr of table.tBodies[0].rows) {
        const hit = !needle || tr.dataset.name.includes(needle);
        tr.hidden = !hit;
        if (hit) shown++;
      }
      count.textContent = shown + ' of ' + count.dataset.total + ' packages';
    });
  }
})();
