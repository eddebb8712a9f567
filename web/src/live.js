// The live stream (`/api/v1/live`, Server-Sent Events). The browser's EventSource reconnects
// by itself after a dropped connection; when the server refuses the stream outright (an
// error status), EventSource gives up, so this opens a new one after a growing pause.

/**
 * @param {string} url
 * @param {{onState: (state: 'connecting' | 'open' | 'reconnecting') => void,
 *   onEvent?: (event: any) => void, retryMs?: number, maxRetryMs?: number}} handlers
 */
export function connectLive(url, { onState, onEvent, retryMs = 2000, maxRetryMs = 60000 }) {
  let source = null;
  let pause = retryMs;
  let timer = 0;
  let closed = false;

  const open = () => {
    onState('connecting');
    source = new EventSource(url);
    source.onopen = () => {
      pause = retryMs;
      onState('open');
    };
    source.onerror = () => {
      if (source.readyState === EventSource.CLOSED && !closed) {
        onState('reconnecting');
        timer = setTimeout(open, pause);
        pause = Math.min(pause * 2, maxRetryMs);
      } else if (!closed) {
        onState('reconnecting');
      }
    };
    source.onmessage = (message) => {
      let event;
      try {
        event = JSON.parse(message.data);
      } catch {
        return; // not ours to judge: the stream carries JSON only
      }
      onEvent?.(event);
    };
  };

  open();
  return {
    close() {
      closed = true;
      clearTimeout(timer);
      source?.close();
    },
  };
}
