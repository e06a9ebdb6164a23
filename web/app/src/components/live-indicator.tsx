// Whether a page's event stream is connected, so a reader knows if what they see still moves.
export const LiveIndicator = ({ live }: { live: boolean }) => (
  <span class="live" role="status">
    {live ? '● live' : '○ reconnecting…'}
  </span>
);
