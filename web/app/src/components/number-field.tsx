// One numeric setting: its label, the input (typed text, so a half-typed value is kept as it is), and
// its error.
import { FieldError, invalidWhen } from './field-error';

interface Props {
  id: string;
  label: string;
  value: string;
  error: string | undefined;
  min?: number;
  max?: number;
  step: number | 'any';
  onInput(value: string): void;
}

export function NumberField({ id, label, value, error, min, max, step, onInput }: Props) {
  return (
    <div>
      <label for={id}>{label}</label>
      <input
        id={id}
        type="number"
        inputMode={step === 1 ? 'numeric' : 'decimal'}
        value={value}
        min={min}
        max={max}
        step={step}
        onInput={(e) => onInput(e.currentTarget.value)}
        {...invalidWhen(id, error)}
      />
      <FieldError fieldId={id} message={error} />
    </div>
  );
}
