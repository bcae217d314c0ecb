/**
 * The MIME type of an attachment guessed from its file name, for the file types commonly sent
 * by mail. Each answer is the one libmime 5's `detectMimeType` gave; an extension not listed
 * (libmime knew about 1,000, most of them rare, at 26 KB minified) is
 * `application/octet-stream`, as it always was for unknown ones: give `contentType` for those.
 *
 * @internal
 */

/** `type ext ext …` entries separated by `,`. */
const TABLE = "text/plain txt log,text/csv csv,text/tab-separated-values tsv,text/markdown md markdown," +
  "text/html html htm,text/css css,text/calendar ics,text/x-vcard vcf,text/javascript mjs," +
  "application/javascript js,application/json json,application/xml xml,application/yaml yaml yml," +
  "application/xhtml+xml xhtml,application/rtf rtf,application/pdf pdf,application/postscript ps eps ai," +
  "application/msword doc dot," +
  "application/vnd.openxmlformats-officedocument.wordprocessingml.document docx," +
  "application/vnd.openxmlformats-officedocument.wordprocessingml.template dotx," +
  "application/vnd.ms-word.document.macroenabled.12 docm,application/vnd.ms-excel xls xlt," +
  "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet xlsx," +
  "application/vnd.openxmlformats-officedocument.spreadsheetml.template xltx," +
  "application/vnd.ms-excel.sheet.macroenabled.12 xlsm,application/vnd.ms-excel.sheet.binary.macroenabled.12 xlsb," +
  "application/vnd.ms-powerpoint ppt pps pot," +
  "application/vnd.openxmlformats-officedocument.presentationml.presentation pptx," +
  "application/vnd.openxmlformats-officedocument.presentationml.slideshow ppsx," +
  "application/vnd.openxmlformats-officedocument.presentationml.template potx," +
  "application/vnd.ms-powerpoint.presentation.macroenabled.12 pptm," +
  "application/vnd.oasis.opendocument.text odt,application/vnd.oasis.opendocument.spreadsheet ods," +
  "application/vnd.oasis.opendocument.presentation odp,application/vnd.oasis.opendocument.graphics odg," +
  "application/vnd.visio vsd,application/vnd.ms-project mpp,application/vnd.ms-xpsdocument xps," +
  "application/epub+zip epub,application/zip zip,application/x-gzip gz,application/x-tar tar," +
  "application/x-bzip2 bz2,application/x-7z-compressed 7z,application/x-rar-compressed rar," +
  "application/java-archive jar,application/vnd.android.package-archive apk,message/rfc822 eml," +
  "application/vnd.ms-outlook msg,application/mbox mbox,application/pkcs7-signature p7s," +
  "application/pkcs7-mime p7m p7c,application/pkix-cert crt cer,application/pkcs-12 p12," +
  "application/x-pkcs12 pfx,application/vnd.google-earth.kml+xml kml,application/vnd.google-earth.kmz kmz," +
  "application/x-bittorrent torrent,font/woff2 woff2,image/png png,image/jpeg jpg jpeg jpe,image/gif gif," +
  "image/bmp bmp,image/tiff tif tiff,image/webp webp,image/svg+xml svg,image/x-icon ico,image/heic heic," +
  "image/heif heif,image/avif avif,audio/mpeg mp3,audio/mp4 m4a,audio/x-aac aac,audio/wav wav,audio/ogg oga," +
  "audio/opus opus,audio/mid mid,audio/midi midi,audio/x-ms-wma wma,audio/aiff aiff aif,video/mp4 mp4," +
  "video/x-m4v m4v,video/quicktime mov qt,video/avi avi,video/x-ms-wmv wmv,video/webm webm,video/mpeg mpeg mpg," +
  "video/ogg ogv,video/3gpp 3gp,video/3gpp2 3g2,video/x-flv flv"

let byExtension: Map<string, string> | undefined

/**
 * The MIME type for a file name (or a bare extension), by its last extension, case-insensitive;
 * `application/octet-stream` when the extension is not in the table.
 *
 * @internal
 */
export const mimeTypeOf = (filename: string): string => {
  if (byExtension === undefined) {
    byExtension = new Map()
    for (const entry of TABLE.split(",")) {
      const [type, ...extensions] = entry.split(" ")
      for (const extension of extensions) byExtension.set(extension, type!)
    }
  }
  const extension = filename.toLowerCase().replace(/\s/g, "").replace(/^\./, "").split(".").pop()!
  return byExtension.get(extension) ?? "application/octet-stream"
}

/** Every extension of the table, for tests. @internal */
export const knownExtensions = (): ReadonlyArray<string> => TABLE.split(",").flatMap((e) => e.split(" ").slice(1))
