// The message under a form field that names what is wrong with it; the field points here with
// aria-describedby, so a screen reader says it with the field.
const fieldErrorId = (fieldId: string) => `${fieldId}-error`;

export const FieldError = ({ fieldId, message }: { fieldId: string; message: string | undefined }) =>
  message ? (
    <p class="field-error" id={fieldErrorId(fieldId)}>
      {message}
    </p>
  ) : null;

/** The attributes that tie a field to its error message. */
export const invalidWhen = (fieldId: string, message: string | undefined) =>
  message ? { 'aria-invalid': 'true' as const, 'aria-describedby': fieldErrorId(fieldId) } : {};
