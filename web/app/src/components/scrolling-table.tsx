// A table that scrolls sideways on a narrow screen. The wrapper takes focus so it can be scrolled
// with the keyboard, and is named so a screen reader says what it holds.
import type { ComponentChildren } from 'preact';

export const ScrollingTable = ({ label, children }: { label: string; children: ComponentChildren }) => (
  <div class="table-scroll" role="region" aria-label={label} tabIndex={0}>
    <table>{children}</table>
  </div>
);
