// A run's status as a coloured word; a running run's badge pulses.
import type { RunStatus } from '../../../api';

export const StatusBadge = ({ status }: { status: RunStatus }) => <span class={`badge ${status}`}>{status}</span>;
