// What a scanner typed into the entry field, read in the browser, offline (issue 16, part 2).
// A line-by-line port of StockpileCore's ScanParser (Sources/StockpileCore/Scan.swift): one parser,
// two languages, and both run Tests/StockpileCoreTests/scan-vectors.json (ScanVectorTests.swift for
// the Swift, deploy/scan-js.sh for this file). Change one, change the other and the vectors.
//
// StockpileScan.parse(text, today) → a plain object named as POST /api/v1/scan answers:
//   { kind, symbology?, gtin?, lot?, expiry?, production?, serial?, count?, sscc?, contained_gtin?,
//     ma_device_id?, drug_code?, fields: {AI: raw value}, warnings: ["case_level", …] }
// with a key left out where the Swift has nil; or, when the code cannot be read,
//   { error: { field, reason } }   (ScanError: `field` names the part, an AI such as "10", or "code").
// `today` is "YYYY-MM-DD" and decides the century of two-digit years (GS1 GenSpecs §7.12); left out,
// it is the browser's local date.
//
// Plain ES2017, no modules: a classic <script> makes the global StockpileScan; node gets module.exports.
var StockpileScan = (function () {
  "use strict";

  var GS = "\u001d";
  // What scanners are set to send instead of GS (neither is in GS1's character set 82).
  var SUBSTITUTES = ["|"];
  // AIM identifiers of symbols that carry GS1 data: digits after them are an element string, not a bare GTIN.
  var GS1_SYMBOLOGIES = ["]C1", "]d2", "]Q3", "]e0", "]J1"];

  // Swift counts and slices Characters (extended grapheme clusters), not UTF-16 units: "(10) at most
  // 20 characters" means 20 Characters there, so here too. Intl.Segmenter splits the same way; where
  // a browser lacks it, code points are the nearest (they differ only for combining marks, emoji
  // sequences and the like, which no GS1 field may hold).
  var segmenter = (typeof Intl !== "undefined" && typeof Intl.Segmenter === "function")
    ? new Intl.Segmenter(undefined, { granularity: "grapheme" }) : null;
  function characters(text) {
    // ASCII without CR LF (one Character in Swift) is one Character per unit: the usual scan, fast.
    if (/^[\x00-\x7f]*$/.test(text) && text.indexOf("\r\n") < 0) return text.split("");
    if (!segmenter) return Array.from(text);
    var out = [];
    for (var s of segmenter.segment(text)) out.push(s.segment);
    return out;
  }
  function isASCIIDigit(c) { return c.length === 1 && c >= "0" && c <= "9"; }
  function allDigits(chars) { return chars.every(isASCIIDigit); }
  function hasPrefix(chars, prefix) {
    var p = characters(prefix);
    if (chars.length < p.length) return false;
    for (var i = 0; i < p.length; i++) if (chars[i] !== p[i]) return false;
    return true;
  }

  // Why a scan could not be read; `field` names the part (an AI such as "10", or "code").
  function ScanError(field, reason) { this.field = field; this.reason = reason; }

  // MARK: dates (LocalDate's arithmetic)

  function daysIn(month, year) {
    if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
    if (month === 4 || month === 6 || month === 9 || month === 11) return 30;
    return 31;
  }
  // nil (null) for impossible dates, as LocalDate(year:month:day:).
  function localDate(year, month, day) {
    if (year < 1 || year > 9999 || month < 1 || month > 12 || day < 1 || day > daysIn(month, year)) return null;
    return { year: year, month: month, day: day };
  }
  function dayBefore(date) {
    if (date.day > 1) return localDate(date.year, date.month, date.day - 1);
    if (date.month > 1) return localDate(date.year, date.month - 1, daysIn(date.month - 1, date.year));
    return localDate(date.year - 1, 12, 31);
  }
  function pad(n, width) { var s = String(n); while (s.length < width) s = "0" + s; return s; }
  function formatDate(date) { return pad(date.year, 4) + "-" + pad(date.month, 2) + "-" + pad(date.day, 2); }
  function parseToday(text) {
    if (text === undefined || text === null) {
      var now = new Date();
      return localDate(now.getFullYear(), now.getMonth() + 1, now.getDate());
    }
    var m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(String(text));
    var date = m ? localDate(+m[1], +m[2], +m[3]) : null;
    if (!date) throw new TypeError("StockpileScan.parse: today must be a date YYYY-MM-DD, not " + text);
    return date;
  }

  // Reads one scan. `today` decides the century of two-digit years (GS1 GenSpecs §7.12).
  function parse(raw, today) {
    var day = parseToday(today);
    try {
      return output(read(String(raw), day));
    } catch (e) {
      if (e instanceof ScanError) return { error: { field: e.field, reason: e.reason } };
      throw e;
    }
  }

  function newCode(kind) {
    return {
      kind: kind, symbology: null, gtin: null, lot: null, expiry: null, production: null, serial: null,
      count: null, sscc: null, containedGTIN: null, maDeviceID: null, drugCode: null, fields: {}, warnings: []
    };
  }

  function read(raw, today) {
    var text = characters(raw.replace(/^[ \r\n\t]+|[ \r\n\t]+$/g, ""));
    var symbology = null;
    if (text[0] === "]" && text.length >= 3) {
      symbology = text.slice(0, 3).join("");
      text = text.slice(3);
    }
    if (text.length === 0) throw new ScanError("code", "empty scan");
    var code;
    var lowered = characters(text.join("").toLowerCase());
    if (hasPrefix(text, "MA.") || hasPrefix(text, "ma.")) {
      code = ma(text, today);
    } else if (hasPrefix(lowered, "http://") || hasPrefix(lowered, "https://")) {
      code = digitalLink(text.join(""), today);
    } else if (text.length === 20 && text[0] === "8" && allDigits(text)) {
      code = newCode("drug_trace");
      code.drugCode = text.slice(0, 7).join("");
      code.serial = text.slice(7).join("");
      code.warnings.push({ code: "no_lot_or_expiry" });
    } else if ([8, 12, 13, 14].indexOf(text.length) >= 0 && allDigits(text) &&
               (symbology === null || GS1_SYMBOLOGIES.indexOf(symbology) < 0)) {
      var digits = text.join("");
      var gtin = "00000000000000".slice(digits.length) + digits;
      if (!checkDigitValid(gtin)) throw new ScanError("code", digits + ": the check digit is wrong (a misread, or not a GTIN)");
      code = newCode("gtin");
      code.gtin = gtin;
      code.warnings.push({ code: "no_lot_or_expiry" });
    } else if (text[0] === "(") {
      code = gs1(bracketed(text), "gs1", today);
    } else {
      code = gs1(elementString(text), "gs1", today);
    }
    code.symbology = symbology;
    if (code.gtin !== null && code.gtin[0] >= "1" && code.gtin[0] <= "8") code.warnings.push({ code: "case_level" });
    return code;
  }

  // The answer's shape: POST /api/v1/scan's names (ScanOutput), nil left out; warnings as their codes
  // (a lost separator's text is the field's own value, in `fields`).
  function output(code) {
    var out = { kind: code.kind };
    var names = [["symbology", "symbology"], ["gtin", "gtin"], ["lot", "lot"], ["expiry", "expiry"],
      ["production", "production"], ["serial", "serial"], ["count", "count"], ["sscc", "sscc"],
      ["containedGTIN", "contained_gtin"], ["maDeviceID", "ma_device_id"], ["drugCode", "drug_code"]];
    names.forEach(function (pair) {
      var value = code[pair[0]];
      if (value === null) return;
      out[pair[1]] = (pair[0] === "expiry" || pair[0] === "production") ? formatDate(value) : value;
    });
    out.fields = code.fields;
    out.warnings = code.warnings.map(function (w) { return w.code; });
    return out;
  }

  // MARK: GS1 application identifiers

  function spec(minLength, maxLength, numeric, predefined) {
    // predefined: never followed by a GS (GS1's table of such prefixes, not every fixed length).
    return { minLength: minLength, maxLength: maxLength, numeric: numeric, predefined: predefined };
  }

  // The AIs a medical supply label carries (research §2.1), and the families 31nn–36nn, 41n.
  function ai(code) {
    switch (code) {
      case "00": return spec(18, 18, true, true);
      case "01": case "02": case "03": return spec(14, 14, true, true);
      case "11": case "12": case "13": case "15": case "16": case "17": return spec(6, 6, true, true);
      case "20": return spec(2, 2, true, true);
      case "10": case "21": case "22": return spec(1, 20, false, false);
      case "235": return spec(1, 28, false, false);
      case "240": case "241": case "250": case "251": return spec(1, 30, false, false);
      case "30": case "37": return spec(1, 8, true, false);
      case "7003": return spec(10, 10, true, false);
      case "90": return spec(1, 30, false, false);
      default: break;
    }
    var chars = characters(code);
    if (chars.length === 3 && ["710", "711", "712", "713", "714", "715", "716"].indexOf(code) >= 0) {
      return spec(1, 20, false, false);
    }
    if (chars.length === 3 && chars[0] === "4" && chars[1] === "1" && chars[2] >= "0" && chars[2] <= "7") {
      return spec(13, 13, true, true);
    }
    if (chars.length === 4 && ["31", "32", "33", "34", "35", "36"].indexOf(chars.slice(0, 2).join("")) >= 0 && allDigits(chars)) {
      return spec(6, 6, true, true);
    }
    // Swift's Int("…") of two Characters: digits with an optional sign, and only 91…99 pass.
    if (chars.length === 2 && /^[+-]?\d+$/.test(code)) {
      var n = parseInt(code, 10);
      if (n >= 91 && n <= 99) return spec(1, 90, false, false);
    }
    return null;
  }

  // The AI at `rest[at…]`: the shortest prefix (2, 3 or 4 digits) that is one.
  function aiPrefix(rest, at) {
    var lengths = [2, 3, 4];
    for (var k = 0; k < lengths.length; k++) {
      var length = lengths[k];
      if (rest.length - at < length) continue;
      var candidate = rest.slice(at, at + length);
      if (!allDigits(candidate)) return null;
      var name = candidate.join("");
      // 2-digit families that are longer AIs (24x, 25x, 31nn…, 41n, 70nn, 71n) are not 2-digit AIs.
      if (length === 2 && ["23", "24", "25", "31", "32", "33", "34", "35", "36", "41", "70", "71"].indexOf(name) >= 0) continue;
      if (length === 3 && ["31", "32", "33", "34", "35", "36", "70"].indexOf(name.slice(0, 2)) >= 0) continue;
      if (ai(name) !== null) return name;
    }
    return null;
  }

  // An element string as scanned: fields one after another, GS (or `|`) after a variable-length one.
  function elementString(text) {
    var rest = text.map(function (c) { return SUBSTITUTES.indexOf(c) >= 0 ? GS : c; });
    var i = 0;
    while (rest[i] === GS) i++;   // a leading FNC1 sent as GS
    var fields = [];
    while (i < rest.length) {
      var code = aiPrefix(rest, i);
      var s = code === null ? null : ai(code);
      if (s === null) {
        throw new ScanError("code", "no GS1 application identifier at \"" + rest.slice(i, i + 12).join("") + "\": not a GS1 code this service knows");
      }
      i += code.length;
      var value;
      if (s.predefined) {
        if (rest.length - i < s.maxLength) throw new ScanError(code, "(" + code + ") needs " + s.maxLength + " characters, has " + (rest.length - i));
        value = rest.slice(i, i + s.maxLength);
        i += s.maxLength;
      } else {
        var end = i;
        while (end < rest.length && rest[end] !== GS) end++;
        value = rest.slice(i, end);
        i = end;
        if (value.length > s.maxLength) {
          throw new ScanError(code, "(" + code + ") is " + value.length + " characters, at most " + s.maxLength + ": the GS separator after it was probably lost; type the fields");
        }
      }
      while (rest[i] === GS) i++;
      fields.push({ ai: code, value: value.join(""), last: i >= rest.length });
    }
    return fields;
  }

  // `(01)…(17)…(10)…`: the printed form, typed or sent by some apps. `\(` is a literal parenthesis.
  function bracketed(text) {
    var fields = [];
    var i = 0;
    while (i < text.length) {
      var close = text.indexOf(")", i);
      if (text[i] !== "(" || close < 0) throw new ScanError("code", "expected (AI) at \"" + text.slice(i, i + 12).join("") + "\"");
      var code = text.slice(i + 1, close).join("");
      if (ai(code) === null) throw new ScanError("code", "(" + code + ") is not an application identifier this service knows");
      i = close + 1;
      var value = "";
      while (i < text.length && text[i] !== "(") {
        if (text[i] === "\\" && text[i + 1] === "(") { value += "("; i += 2; continue; }
        value += text[i]; i++;
      }
      fields.push({ ai: code, value: value, last: false });
    }
    return fields;
  }

  // The fields checked (lengths, digits, check digits, dates) and mapped.
  function gs1(fields, kind, today) {
    var code = newCode(kind);
    fields.forEach(function (field) {
      var name = field.ai, value = field.value, last = field.last;
      var s = ai(name);
      if (s === null) throw new ScanError(name, "(" + name + ") is not an application identifier this service knows");
      var chars = characters(value);
      if (chars.length < s.minLength || chars.length > s.maxLength) {
        throw new ScanError(name, "(" + name + ") must be " + (s.minLength === s.maxLength ? String(s.maxLength) : s.minLength + "–" + s.maxLength) + " characters, is " + chars.length);
      }
      if (s.numeric && !allDigits(chars)) throw new ScanError(name, "(" + name + ") must be digits: " + value);
      if (Object.prototype.hasOwnProperty.call(code.fields, name)) throw new ScanError(name, "(" + name + ") appears twice");
      code.fields[name] = value;
      switch (name) {
        case "01": case "02": case "00":
          if (!checkDigitValid(value)) throw new ScanError(name, "(" + name + ") " + value + ": the check digit is wrong");
          if (name === "01") code.gtin = value; else if (name === "02") code.containedGTIN = value; else code.sscc = value;
          break;
        case "17":
          var expiry = gs1Date(value, name, today);
          code.expiry = expiry.date;
          if (expiry.monthOnly) code.warnings.push({ code: "expiry_month_only" });
          break;
        case "11":
          code.production = gs1Date(value, name, today).date;
          break;
        case "12": case "13": case "16":
          gs1Date(value, name, today);
          break;
        case "15":
          gs1Date(value, name, today);
          code.warnings.push({ code: "best_before_not_expiry" });
          break;
        case "10": case "21":
          // A variable field that ran to the end may hold the next field too, when the GS
          // before it was lost: then it is not filled in (research §6.1, vectors T5).
          if (last && swallowsAnotherField(value, today)) {
            code.warnings.push({ code: "separator_missing_after_" + name, ai: name, text: value });
          } else if (name === "10") code.lot = value; else code.serial = value;
          break;
        case "30": case "37":
          code.count = parseInt(value, 10);
          break;
        default:
          break;
      }
    });
    if (code.gtin === null && code.containedGTIN === null) {
      throw new ScanError("01", "no GTIN in the code: it does not say which item this is");
    }
    if (code.gtin === null) code.gtin = code.containedGTIN;
    return code;
  }

  // Whether a lot or serial that ran to the end of the scan ends in what looks like another
  // field: (21) and more, (10) and more, or (11)/(15)/(17) with a valid date.
  // A lot with "21" or "10" inside is flagged too: a false alarm costs the clerk one confirmation,
  // a serial taken for a lot would be stored as fact.
  function swallowsAnotherField(value, today) {
    var chars = characters(value);
    for (var start = 1; start < Math.max(chars.length - 2, 1); start++) {
      var tail = chars.slice(start);
      var name = tail.slice(0, 2).join("");
      if ((name === "21" || name === "10") && tail.length > 2) return true;
      if ((name === "11" || name === "15" || name === "17") && tail.length >= 8) {
        try {
          gs1Date(tail.slice(2, 8).join(""), name, today);
          return true;
        } catch (e) {
          if (!(e instanceof ScanError)) throw e;
        }
      }
    }
    return false;
  }

  // YYMMDD; DD = 00 is the month's last day; the century by GS1's sliding window from `today`.
  function gs1Date(text, name, today) {
    var chars = characters(text);
    if (chars.length !== 6 || !allDigits(chars)) throw new ScanError(name, "(" + name + ") must be a date YYMMDD: " + text);
    var yy = parseInt(text.slice(0, 2), 10), mm = parseInt(text.slice(2, 4), 10), dd = parseInt(text.slice(4, 6), 10);
    var year = fullYear(yy, today);
    if (mm < 1 || mm > 12) throw new ScanError(name, "(" + name + ") " + text + ": there is no month " + mm);
    var day = dd === 0 ? daysIn(mm, year) : dd;
    var date = localDate(year, mm, day);
    if (date === null) throw new ScanError(name, "(" + name + ") " + text + ": there is no such day");
    return { date: date, monthOnly: dd === 0 };
  }

  // GS1 GenSpecs §7.12: from 49 years back to 50 ahead of `today`'s year.
  function fullYear(yy, today) {
    var century = today.year - today.year % 100;
    var diff = yy - today.year % 100;
    if (diff >= 51) return century - 100 + yy;
    if (diff <= -50) return century + 100 + yy;
    return century + yy;
  }

  // GS1 mod-10: from the right, weights 3, 1, 3, 1… over the digits before the check digit.
  // (The Swift takes any Unicode digit's value here; every caller has checked for ASCII digits first.)
  function checkDigitValid(digits) {
    var chars = characters(String(digits));
    if (chars.length < 2 || !allDigits(chars)) return false;
    var values = chars.map(Number);
    var sum = 0;
    for (var k = values.length - 2, offset = 0; k >= 0; k--, offset++) sum += values[k] * (offset % 2 === 0 ? 3 : 1);
    return (10 - sum % 10) % 10 === values[values.length - 1];
  }

  // MARK: Other kinds

  // What Foundation's URLComponents(string:) (swift-foundation, RFC 3986) does with the parts a Digital
  // Link needs. A component with characters RFC 3986 does not allow (a space, non-ASCII, a lone "%"…) is
  // percent-encoded whole, "%" included, so its escapes then decode to themselves: its text is taken
  // as written. A valid one is decoded; an escape that is not UTF-8 leaves the piece as written.
  var UNRESERVED = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~";
  var SUB_DELIMS = "!$&'()*+,;=";
  var PATH_ALLOWED = UNRESERVED + SUB_DELIMS + ":@/";
  var QUERY_ALLOWED = PATH_ALLOWED + "?";
  var HOST_ALLOWED = UNRESERVED + SUB_DELIMS;
  function validComponent(text, allowed) {
    for (var k = 0; k < text.length; k++) {
      var c = text[k];
      if (c === "%") {
        if (!/^[0-9A-Fa-f]{2}$/.test(text.slice(k + 1, k + 3))) return false;
        k += 2;
      } else if (allowed.indexOf(c) < 0) {
        return false;
      }
    }
    return true;
  }
  function percentDecoded(text) {
    try { return decodeURIComponent(text); } catch (e) { return null; }
  }
  // { path, query (null if none) } of an http(s) URL, or null where URLComponents(string:) gives nil.
  function urlComponents(text) {
    var afterScheme = text.indexOf(":") + 3;   // the caller saw "http://" or "https://"
    var authorityEnd = afterScheme;
    while (authorityEnd < text.length && "/?#".indexOf(text[authorityEnd]) < 0) authorityEnd++;
    var authority = text.slice(afterScheme, authorityEnd);
    var host = authority.slice(authority.lastIndexOf("@") + 1);   // user:password@ never fails: it is encoded
    if (host[0] === "[" && host.indexOf("]") >= 0) {
      // An IP literal: only ":port" may follow it. (Its inside is not checked: Foundation encodes or
      // refuses an odd zone ID; no scanner sends one.)
      var after = host.slice(host.indexOf("]") + 1);
      if (after !== "" && after[0] !== ":") return null;
      if (!/^\d*$/.test(after.slice(1))) return null;
    } else {
      var colon = host.indexOf(":");
      var name = colon < 0 ? host : host.slice(0, colon);
      if (colon >= 0 && !/^\d*$/.test(host.slice(colon + 1))) return null;
      // A host with characters a host cannot have goes through IDNA: non-ASCII letters become
      // punycode; ASCII that is not allowed (a space, "<", "|"…) fails, and so does the URL.
      // (IDNA's own refusals of some non-ASCII are not copied: the nearest offline is to accept them.)
      if (!validComponent(name.replace(/[^\x00-\x7f]/g, ""), HOST_ALLOWED)) return null;
    }
    var pathEnd = authorityEnd;
    while (pathEnd < text.length && "?#".indexOf(text[pathEnd]) < 0) pathEnd++;
    var path = text.slice(authorityEnd, pathEnd);
    var query = null;
    if (text[pathEnd] === "?") {
      var hash = text.indexOf("#", pathEnd + 1);
      query = text.slice(pathEnd + 1, hash < 0 ? text.length : hash);
    }
    return { path: path, query: query };
  }

  // `https://<any host>/01/<gtin>[/22/…][/10/<lot>][/21/<serial>]?17=…&…`
  function digitalLink(text, today) {
    var url = urlComponents(text);
    if (url === null) throw new ScanError("code", "not a URL this service can read");
    // Split before decoding: a value may hold an encoded "/".
    var pathValid = validComponent(url.path, PATH_ALLOWED);
    var segments = url.path.split("/").filter(function (s) { return s !== ""; }).map(function (s) {
      if (!pathValid) return s;
      var decoded = percentDecoded(s);
      return decoded === null ? s : decoded;
    });
    var start = segments.indexOf("01");
    if (start < 0 || (segments.length - start) % 2 !== 0) {
      throw new ScanError("code", "a web address, but not a GS1 Digital Link (no /01/ followed by a GTIN): not a code this service knows");
    }
    var fields = [];
    for (var i = start; i < segments.length; i += 2) fields.push({ ai: segments[i], value: segments[i + 1], last: false });
    queryItems(url.query).forEach(function (item) {
      if (ai(item.name) !== null) fields.push({ ai: item.name, value: item.value === null ? "" : item.value, last: false });
    });
    return gs1(fields, "digital_link", today);
  }

  // URLComponents.queryItems: split on "&", then on the first "="; a name that does not decode is "",
  // a value that does not decode (or is not there) is nil.
  function queryItems(query) {
    if (query === null || query === "") return [];
    var valid = validComponent(query, QUERY_ALLOWED);
    return query.split("&").map(function (item) {
      var equals = item.indexOf("=");
      var name = equals < 0 ? item : item.slice(0, equals);
      var value = equals < 0 ? null : item.slice(equals + 1);
      if (!valid) return { name: name, value: value };
      var decodedName = percentDecoded(name);
      return { name: decodedName === null ? "" : decodedName, value: value === null ? null : percentDecoded(value) };
    });
  }

  // `MA.156.M0.<registrant>.<product>.S….M….L….E….V….C…`: the device identifier is the first
  // five fields; each later one is a letter and its value. The check character is not verified
  // (ZIIOT says its published algorithm no longer applies).
  function ma(text, today) {
    var parts = [[]];
    text.forEach(function (c) { if (c === ".") parts.push([]); else parts[parts.length - 1].push(c); });
    if (!(parts.length >= 5 && allDigits(parts[1]) && parts[3].length > 0 && parts[4].length > 0)) {
      throw new ScanError("code", "an MA code needs MA.<country>.<industry>.<registrant>.<product>");
    }
    var code = newCode("ma_code");
    code.maDeviceID = parts.slice(0, 5).map(function (p) { return p.join(""); }).join(".").toUpperCase();
    var expires = null, validThrough = null;
    parts.slice(5).forEach(function (part) {
      if (part.length === 0) return;
      var key = part[0].toUpperCase(), value = part.slice(1).join("");
      code.fields["MA." + key] = value;
      switch (key) {
        case "L": code.lot = value; break;
        case "S": code.serial = value; break;
        case "M": case "P": code.production = maDate(value, key, today); break;
        case "E": expires = maDate(value, key, today); break;
        case "V": validThrough = maDate(value, key, today); break;
        default: break;
      }
    });
    // The last usable day: 有效期 (.V) when given, else the day before 失效期 (.E).
    if (validThrough !== null) {
      code.expiry = validThrough;
    } else if (expires !== null) {
      code.expiry = dayBefore(expires);
    }
    if (code.lot === null && code.expiry === null) code.warnings.push({ code: "no_lot_or_expiry" });
    return code;
  }

  function maDate(text, unit, today) {
    var chars = characters(text);
    if (chars.length === 8 && allDigits(chars)) {
      var date = localDate(parseInt(text.slice(0, 4), 10), parseInt(text.slice(4, 6), 10), parseInt(text.slice(6, 8), 10));
      if (date !== null) {
        // No device was made or expires before 1900; and 0001-01-01 has no day before it (.E).
        if (parseInt(text.slice(0, 4), 10) < 1900) throw new ScanError("MA." + unit, "the date " + text + " is out of range");
        return date;
      }
    }
    try {
      return gs1Date(text, "MA." + unit, today).date;
    } catch (e) {
      if (!(e instanceof ScanError)) throw e;
      throw new ScanError("MA." + unit, "the date " + text + " is neither YYMMDD nor YYYYMMDD");
    }
  }

  return { parse: parse, checkDigitValid: checkDigitValid };
})();

if (typeof module !== "undefined") module.exports = StockpileScan;
