// Extracts the running text of one ELTeC TEI file as raw paragraphs, parsing the file as a stream.
// Only <text><body> counts: teiHeader, front and back never reach the output. Inside the body:
// - p, head, label, trailer, ab and item each make one paragraph; div, lg and the blocks above end
//   whatever paragraph is open, so stray text directly inside a div or quote still comes out.
// - consecutive l (verse lines) make one paragraph, lines joined with '\n'.
// - note, fw, figure, gap, pb and milestone (editorial matter, page furniture, markers) are dropped
//   with any content; lb is a space; a ref pointing inside the document ("#...") is a footnote
//   marker such as "[1]" and is dropped like the note it points to.
// Whitespace inside text is source formatting, so every run becomes a space (normalize.ts collapses).
import { SaxesParser, type SaxesTagPlain } from 'saxes';
import { InvalidUtf8Error, readUtf8Chunks } from './utf8.js';

const PARAGRAPHS = new Set(['p', 'head', 'label', 'trailer', 'ab', 'item']);
const BOUNDARIES = new Set(['div', 'lg', 'body']);
const DROPPED = new Set(['note', 'fw', 'figure', 'gap', 'pb', 'milestone']);

export class MalformedXmlError extends Error {
  constructor(message: string) {
    super(`malformed XML: ${message}`);
    this.name = 'MalformedXmlError';
  }
}

/** Raw (unnormalised) paragraphs of the body of `file`, in document order. */
export async function readTeiParagraphs(file: string): Promise<string[]> {
  const paragraphs: string[] = [];
  const parser = new SaxesParser({ fileName: file, xmlns: false });
  const open: string[] = []; // local names of the elements enclosing the parser's position
  let bodyDepth = 0; // > 0 while inside text/body
  let droppedDepth = 0; // > 0 while inside an element whose content is dropped
  let lineDepth = 0; // > 0 while inside a verse line
  let current = '';
  let verse = false; // whether `current` holds verse lines

  const flush = (): void => {
    if (current.trim().length > 0) paragraphs.push(current);
    current = '';
    verse = false;
  };

  parser.on('opentag', (tag: SaxesTagPlain) => {
    const name = localName(tag.name);
    const parent = open.length > 0 ? open[open.length - 1] : '';
    open.push(name);
    if (bodyDepth === 0) {
      if (name === 'body' && parent === 'text') bodyDepth = 1;
      return;
    }
    bodyDepth++;
    if (droppedDepth > 0 || DROPPED.has(name) || (name === 'ref' && isInternalRef(tag))) {
      droppedDepth++;
      return;
    }
    if (name === 'l') {
      if (verse) current += '\n';
      else flush();
      verse = true;
      lineDepth++;
    } else if (name === 'lb') {
      current += ' ';
    } else if (PARAGRAPHS.has(name) || BOUNDARIES.has(name)) {
      flush();
    }
  });

  parser.on('closetag', (tag: SaxesTagPlain) => {
    const name = localName(tag.name);
    open.pop();
    if (bodyDepth === 0) return;
    bodyDepth--;
    if (droppedDepth > 0) {
      droppedDepth--;
      return;
    }
    if (name === 'l') lineDepth--;
    else if (PARAGRAPHS.has(name) || BOUNDARIES.has(name)) flush();
  });

  const onText = (text: string): void => {
    if (bodyDepth === 0 || droppedDepth > 0) return;
    if (verse && lineDepth === 0) {
      if (text.trim().length === 0) return; // layout between verse lines
      flush(); // prose after verse inside the same container starts a new paragraph
    }
    current += text.replace(/\s+/g, ' ');
  };
  parser.on('text', onText);
  parser.on('cdata', onText);

  try {
    for await (const chunk of readUtf8Chunks(file)) parser.write(chunk);
    parser.close();
  } catch (err) {
    if (err instanceof InvalidUtf8Error || !(err instanceof Error)) throw err;
    throw new MalformedXmlError(err.message); // saxes starts its messages with "file:line:column: "
  }
  return paragraphs;
}

function localName(qualified: string): string {
  const colon = qualified.indexOf(':');
  return colon < 0 ? qualified : qualified.slice(colon + 1);
}

function isInternalRef(tag: SaxesTagPlain): boolean {
  const target = tag.attributes.target;
  return typeof target === 'string' && target.startsWith('#');
}
