// A lane's display follows the barrier live: the server pushes the display's state over a WebSocket whenever an
// overstay is held or paid at this lane (and once on connecting, so a reconnect catches up). No polling.
(function () {
  const live = document.getElementById('display-live');
  const main = document.getElementById('display');
  const scheme = window.location.protocol === 'https:' ? 'wss://' : 'ws://';
  const url = scheme + window.location.host + '/ws/display/' + live.dataset.lane + '/' + window.location.search;
  let wait = 1000;

  function connect() {
    const socket = new WebSocket(url);
    socket.onmessage = (event) => {
      const frame = JSON.parse(event.data);
      if (frame.type !== 'display') return;
      main.innerHTML = frame.html;
      live.dataset.state = 'live';
      wait = 1000;
    };
    socket.onclose = (event) => {
      live.dataset.state = 'reconnecting';
      if (event.code === 4403) return;  // the display token was revoked: nothing to wait for
      setTimeout(connect, wait);
      wait = Math.min(wait * 2, 30000);
    };
  }
  connect();
})();
