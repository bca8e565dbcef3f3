// The QR code of a payment request, rendered on the server as an inline SVG (no image
// request, no script). Error correction M: readable from a phone screen at 200 px.
import QRCode from 'qrcode';
import { esc } from './html.js';

export async function qrSvg(text: string, label: string): Promise<string> {
  const svg = await QRCode.toString(text, { type: 'svg', errorCorrectionLevel: 'M', margin: 2, color: { dark: '#000000', light: '#ffffff' } });
  return svg.trim().replace(/^<svg /, `<svg role="img" aria-label="${esc(label)}" focusable="false" `);
}
