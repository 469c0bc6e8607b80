/**
 * A URL fit for a log line or an error message: its password (and a user
 * name that could be one) replaced by `***`. Unparsable input is redacted by
 * pattern, so a malformed URL with credentials in it is never printed as is.
 */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password === '' && parsed.username === '') return url;
    // redis://:pw@host and redis://pw@host (no user): hide what stands before the @, whatever it is.
    if (parsed.password !== '') parsed.password = '***';
    else parsed.username = '***';
    return parsed.toString();
  } catch {
    return url.replace(/\/\/[^/@]*@/, '//***@');
  }
}
