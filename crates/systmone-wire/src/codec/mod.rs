//! Typed requests and responses of the SystmOne Client Integration API, and their XML.
//!
//! Reading goes through small element trees (see `xml.rs` for why not serde): a record's
//! events are decoded one by one as they are read, so memory follows the decoded record,
//! not a tree of the whole document, and hostile documents are refused by size-relative
//! element and depth caps. Writing is pretty-printed with an XML declaration, like TPP's
//! request templates. Unknown elements never fail a document (SystmOne adds fields over
//! time); in records, events, demographics and tasks they are kept in an `other` bag so
//! `hubctl decode` shows them. Bytes are read as UTF-8, or transcoded from a declared
//! single-byte Windows encoding, or refused with a clear error (see `encoding.rs`): never
//! silently misread.

mod model;
mod request;
mod response;
mod xml;

mod encoding;

pub use model::{
    Address, Appointment, Attachment, ClinicalCodeEntry, Code, Demographics, Drug, Event, Identity,
    Letter, Medication, Narrative, OtherElement, PatientIdentifier, RecordState, Sex, Task,
    TaskAssignee, Telephone, TelephoneKind, Visit,
};
pub use request::{
    DeletePatientRecordParams, FilterFlag, GetOrganisationMetaDataParams, GetPatientRecordParams,
    IsPatientRetrievedParams, PatientSearchParams, RecordFilter, RequestParams,
    UpdatePatientRecordParams,
};
pub use response::{
    CurrentActivity, DeletePatientRecordResponse, GetFunctionsResponse, OrganisationMetaData,
    PatientRecord, PatientSearchResponse, ResponseBody, SearchResult, Site, SupportedFunction,
    UpdatePatientRecordResponse, User,
};

use serde::Serialize;
use std::fmt;

/// Documents larger than this are refused before parsing (same default as framing).
pub const MAX_DOCUMENT_BYTES: usize = 64 * 1024 * 1024;

pub const REQUEST_ROOT: &str = "ClientIntegrationRequest";
pub const RESPONSE_ROOT: &str = "ClientIntegrationResponse";
/// Every function the hub uses is at version 1.0.
pub const DEFAULT_FUNCTION_VERSION: &str = "1.0";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("expected a <{expected}> document from SystmOne but got <{found}>")]
    WrongRoot {
        expected: &'static str,
        found: String,
    },
    #[error(
        "the document contains a DOCTYPE declaration; SystmOne never sends one, so it was refused"
    )]
    DoctypeRefused,
    #[error("the SystmOne XML is malformed near byte {position}: {message}")]
    Malformed { position: u64, message: String },
    #[error("the SystmOne document lacks a required element: {0}")]
    MissingElement(String),
    #[error("unknown SystmOne function {0:?}")]
    UnknownFunction(String),
    #[error("the SystmOne document is {size} bytes, over the {limit}-byte limit")]
    TooLarge { size: usize, limit: usize },
    #[error("invalid value in <{element}>: {reason}")]
    InvalidValue { element: String, reason: String },
    #[error("<{element}> contains a character XML cannot carry ({code}); remove it and try again")]
    InvalidCharacter { element: String, code: String },
    #[error("the SystmOne document's text encoding is not readable: {0}")]
    Encoding(String),
    /// Far more elements than any real document has for its size: refused before decoding
    /// it could take memory out of proportion to the input.
    #[error(
        "the SystmOne document has {count} elements in its first {position} bytes, more than \
         the {allowance} + one per {per} bytes accepted; refused as broken or hostile",
        allowance = xml::ELEMENT_ALLOWANCE,
        per = xml::BYTES_PER_ELEMENT
    )]
    TooManyElements { position: u64, count: u64 },
}

/// Untrusted names are cut short before going into an error message.
fn clip(s: &str) -> String {
    s.chars().take(64).collect()
}

/// The wire names of every function in the specification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Function {
    GetFunctions,
    GetOrganisationMetaData,
    GetCurrentActivity,
    GetCurrentSelection,
    PatientSearch,
    GetPatientRecord,
    UpdatePatientRecord,
    GetDocument,
    DeletePatientRecord,
    GetAppointmentSlots,
    GetDiary,
    ExitClient,
    DataExtract,
    LaunchFunctionality,
    GetXSDFiles,
    GetReferenceData,
    IsPatientRetrieved,
}

impl Function {
    pub const ALL: [Function; 17] = [
        Function::GetFunctions,
        Function::GetOrganisationMetaData,
        Function::GetCurrentActivity,
        Function::GetCurrentSelection,
        Function::PatientSearch,
        Function::GetPatientRecord,
        Function::UpdatePatientRecord,
        Function::GetDocument,
        Function::DeletePatientRecord,
        Function::GetAppointmentSlots,
        Function::GetDiary,
        Function::ExitClient,
        Function::DataExtract,
        Function::LaunchFunctionality,
        Function::GetXSDFiles,
        Function::GetReferenceData,
        Function::IsPatientRetrieved,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Function::GetFunctions => "GetFunctions",
            Function::GetOrganisationMetaData => "GetOrganisationMetaData",
            Function::GetCurrentActivity => "GetCurrentActivity",
            Function::GetCurrentSelection => "GetCurrentSelection",
            Function::PatientSearch => "PatientSearch",
            Function::GetPatientRecord => "GetPatientRecord",
            Function::UpdatePatientRecord => "UpdatePatientRecord",
            Function::GetDocument => "GetDocument",
            Function::DeletePatientRecord => "DeletePatientRecord",
            Function::GetAppointmentSlots => "GetAppointmentSlots",
            Function::GetDiary => "GetDiary",
            Function::ExitClient => "ExitClient",
            Function::DataExtract => "DataExtract",
            Function::LaunchFunctionality => "LaunchFunctionality",
            Function::GetXSDFiles => "GetXSDFiles",
            Function::GetReferenceData => "GetReferenceData",
            Function::IsPatientRetrieved => "IsPatientRetrieved",
        }
    }

    pub fn parse(name: &str) -> Result<Function, CodecError> {
        let name = name.trim();
        Function::ALL
            .into_iter()
            .find(|f| f.as_str() == name)
            .ok_or_else(|| CodecError::UnknownFunction(clip(name)))
    }
}

impl fmt::Display for Function {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Function {
    type Err = CodecError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Function::parse(s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum DrugScheme {
    Multilex,
    Dmd,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum CodeScheme {
    Ctv3,
    Snomed,
}

/// `<OutputScheme>`: which drug and clinical code schemes SystmOne should answer in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct OutputScheme {
    pub drugs: Option<DrugScheme>,
    pub codes: Option<CodeScheme>,
}

impl OutputScheme {
    fn read(e: &xml::Element) -> Result<Self, CodecError> {
        let drugs = match e.trimmed_of("Drugs").as_deref() {
            None | Some("") => None,
            Some("Multilex") => Some(DrugScheme::Multilex),
            Some("Dmd") => Some(DrugScheme::Dmd),
            Some(_) => {
                return Err(CodecError::InvalidValue {
                    element: "OutputScheme/Drugs".into(),
                    reason: "expected Multilex or Dmd".into(),
                })
            }
        };
        let codes = match e.trimmed_of("Codes").as_deref() {
            None | Some("") => None,
            Some("CTV3") => Some(CodeScheme::Ctv3),
            Some("Snomed") => Some(CodeScheme::Snomed),
            Some(_) => {
                return Err(CodecError::InvalidValue {
                    element: "OutputScheme/Codes".into(),
                    reason: "expected CTV3 or Snomed".into(),
                })
            }
        };
        Ok(OutputScheme { drugs, codes })
    }

    fn write(&self, out: &mut xml::XmlOut) -> Result<(), CodecError> {
        out.open("OutputScheme");
        out.opt_leaf(
            "Drugs",
            self.drugs.map(|d| match d {
                DrugScheme::Multilex => "Multilex",
                DrugScheme::Dmd => "Dmd",
            }),
        )?;
        out.opt_leaf(
            "Codes",
            self.codes.map(|c| match c {
                CodeScheme::Ctv3 => "CTV3",
                CodeScheme::Snomed => "Snomed",
            }),
        )?;
        out.close("OutputScheme");
        Ok(())
    }
}

/// The `<APIKey>` of a request as it goes on (or comes off) the wire. The key is a secret:
/// `Debug` and `Serialize` (what `hubctl decode` prints, what logs show) give
/// `[redacted]`, so a logged or printed request never carries it; read it with
/// [`WireApiKey::expose`] only to write the request or check it (the simulator).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct WireApiKey(String);

impl WireApiKey {
    const REDACTED: &'static str = "[redacted]";

    /// Deliberate access to the key. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for WireApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WireApiKey({})", Self::REDACTED)
    }
}

impl Serialize for WireApiKey {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(Self::REDACTED)
    }
}

impl From<String> for WireApiKey {
    fn from(key: String) -> Self {
        WireApiKey(key)
    }
}

impl From<&str> for WireApiKey {
    fn from(key: &str) -> Self {
        WireApiKey(key.to_owned())
    }
}

/// `<ClientIntegrationRequest>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Request {
    pub api_key: WireApiKey,
    /// None = an empty `<DeviceID/>`: first ever use, SystmOne asks the user to approve.
    pub device_id: Option<String>,
    /// Shown to users and in SystmOne's audit trail, e.g. "Inpatient Hub 1.0".
    pub device_version: String,
    /// Unique per request; audit only.
    pub request_uid: String,
    pub function_version: String,
    pub output_scheme: Option<OutputScheme>,
    pub params: RequestParams,
}

impl Request {
    /// A request with a fresh GUID as RequestUID and FunctionVersion 1.0.
    pub fn new(
        api_key: impl Into<WireApiKey>,
        device_id: Option<String>,
        device_version: impl Into<String>,
        params: RequestParams,
    ) -> Self {
        Request {
            api_key: api_key.into(),
            device_id,
            device_version: device_version.into(),
            request_uid: uuid::Uuid::new_v4().to_string(),
            function_version: DEFAULT_FUNCTION_VERSION.to_string(),
            output_scheme: None,
            params,
        }
    }

    pub fn function(&self) -> Function {
        self.params.function()
    }
}

/// `<ClientIntegrationResponse>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Response {
    /// The device's ID; on first use, the one SystmOne has just issued. None when empty.
    pub device_id: Option<String>,
    /// Echo of the request's RequestUID.
    pub request_uid: String,
    pub function: Function,
    pub function_version: String,
    pub response_uid: String,
    pub body: ResponseBody,
}

impl Response {
    /// A response answering `request`, with a fresh ResponseUID (what the simulator sends).
    pub fn answering(request: &Request, device_id: Option<String>, body: ResponseBody) -> Self {
        Response {
            device_id,
            request_uid: request.request_uid.clone(),
            function: request.function(),
            function_version: request.function_version.clone(),
            response_uid: uuid::Uuid::new_v4().to_string(),
            body,
        }
    }

    /// SystmOne's error answer to `request`.
    pub fn error(
        request: &Request,
        device_id: Option<String>,
        message: impl Into<String>,
        permanent: bool,
    ) -> Self {
        Response::answering(
            request,
            device_id,
            ResponseBody::Error {
                message: message.into(),
                permanent,
            },
        )
    }

    pub fn is_error(&self) -> bool {
        matches!(self.body, ResponseBody::Error { .. })
    }

    /// Pretty JSON of the decoded response, for `hubctl decode`. It contains patient data.
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string_pretty(self)
    }
}

fn check_size(bytes: &[u8]) -> Result<(), CodecError> {
    if bytes.len() > MAX_DOCUMENT_BYTES {
        return Err(CodecError::TooLarge {
            size: bytes.len(),
            limit: MAX_DOCUMENT_BYTES,
        });
    }
    Ok(())
}

/// The document's text, once its size and encoding are accepted.
fn document_text(bytes: &[u8]) -> Result<std::borrow::Cow<'_, str>, CodecError> {
    check_size(bytes)?;
    encoding::to_utf8(bytes)
}

/// The whole document as a tree, if its root is `expected`.
fn parse_root<'a>(text: &'a str, expected: &'static str) -> Result<xml::Element<'a>, CodecError> {
    let root = xml::parse(text)?;
    if root.name != expected {
        return Err(CodecError::WrongRoot {
            expected,
            found: clip(&root.name),
        });
    }
    Ok(root)
}

fn required(root: &xml::Element, name: &'static str) -> Result<String, CodecError> {
    root.trimmed_of(name)
        .ok_or_else(|| CodecError::MissingElement(name.into()))
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.is_empty())
}

/// Writes the request, elements in the spec's order. The transport appends the newline.
pub fn encode_request(request: &Request) -> Result<String, CodecError> {
    let mut out = xml::XmlOut::new();
    out.open(REQUEST_ROOT);
    out.leaf("APIKey", request.api_key.expose())?;
    match &request.device_id {
        Some(id) if !id.is_empty() => out.leaf("DeviceID", id)?,
        _ => out.empty("DeviceID"),
    }
    out.leaf("DeviceVersion", &request.device_version)?;
    out.leaf("RequestUID", &request.request_uid)?;
    out.leaf("Function", request.function().as_str())?;
    out.leaf("FunctionVersion", &request.function_version)?;
    if let Some(scheme) = &request.output_scheme {
        scheme.write(&mut out)?;
    }
    request.params.write(&mut out)?;
    out.close(REQUEST_ROOT);
    Ok(out.finish())
}

/// Reads a request (the simulator's side). APIKey, RequestUID and Function are required;
/// an absent `<FunctionParameters>` reads as empty.
pub fn decode_request(bytes: &[u8]) -> Result<Request, CodecError> {
    let text = document_text(bytes)?;
    let root = parse_root(&text, REQUEST_ROOT)?;
    let function = Function::parse(&required(&root, "Function")?)?;
    let empty = xml::Element::default();
    let params_element = root.child("FunctionParameters").unwrap_or(&empty);
    Ok(Request {
        api_key: required(&root, "APIKey")?.into(),
        device_id: non_empty(root.trimmed_of("DeviceID")),
        device_version: root.text_of("DeviceVersion").unwrap_or_default(),
        request_uid: required(&root, "RequestUID")?,
        function_version: root.trimmed_of("FunctionVersion").unwrap_or_default(),
        output_scheme: root
            .child("OutputScheme")
            .map(OutputScheme::read)
            .transpose()?,
        params: RequestParams::read(function, params_element)?,
    })
}

/// Writes a response (the simulator's side), elements in the spec's order.
pub fn encode_response(response: &Response) -> Result<String, CodecError> {
    let mut out = xml::XmlOut::new();
    out.open(RESPONSE_ROOT);
    match &response.device_id {
        Some(id) if !id.is_empty() => out.leaf("DeviceID", id)?,
        _ => out.empty("DeviceID"),
    }
    out.leaf("RequestUID", &response.request_uid)?;
    out.leaf("Function", response.function.as_str())?;
    out.leaf("FunctionVersion", &response.function_version)?;
    out.leaf("ResponseUID", &response.response_uid)?;
    response.body.write(&mut out)?;
    out.close(RESPONSE_ROOT);
    Ok(out.finish())
}

/// Reads a response; the `<Function>` element decides how `<Response>` is read. An error
/// body (`<ErrorMessage>`) is recognised for any function.
///
/// The envelope is read as a small tree; a GetPatientRecord body (the one response that
/// grows large) is decoded event by event as it is read, so memory stays proportional to
/// the decoded record rather than to a tree of the whole document. Errors are reported as
/// if the whole document had been parsed first: a malformed document is refused as such
/// even when a value before the fault is invalid.
pub fn decode_response(bytes: &[u8]) -> Result<Response, CodecError> {
    let text = document_text(bytes)?;
    let mut parser = xml::Parser::new(&text);
    let start = parser.root()?;
    if start.name != RESPONSE_ROOT {
        let found = clip(&start.name);
        parser.skip(start)?;
        return Err(CodecError::WrongRoot {
            expected: RESPONSE_ROOT,
            found,
        });
    }
    // Only the first <Response> is read, as `child` finds it, and only once <Function> has
    // said it is a record; otherwise it is kept as a tree and read as before.
    let mut streamed: Option<Result<ResponseBody, CodecError>> = None;
    let root = parser.stream(start, |parser, root, child| {
        let is_record = || {
            root.child("Function")
                .is_some_and(|f| Function::parse(&f.text) == Ok(Function::GetPatientRecord))
        };
        if child.name == "Response" && !root.has("Response") && is_record() {
            root.children.push(child.placeholder());
            streamed = Some(response::read_record_streamed(parser, child)?);
        } else {
            let element = parser.element(child)?;
            root.children.push(element);
        }
        Ok(())
    })?;
    let function = Function::parse(&required(&root, "Function")?)?;
    let body_element = root
        .child("Response")
        .ok_or_else(|| CodecError::MissingElement("Response".into()))?;
    let body = match streamed {
        Some(body) => body?,
        None => ResponseBody::read(function, body_element)?,
    };
    Ok(Response {
        device_id: non_empty(root.trimmed_of("DeviceID")),
        request_uid: root.trimmed_of("RequestUID").unwrap_or_default(),
        function,
        function_version: root.trimmed_of("FunctionVersion").unwrap_or_default(),
        response_uid: root.trimmed_of("ResponseUID").unwrap_or_default(),
        body,
    })
}

/// The envelope of a request, read without its parameters: lets the simulator answer a
/// request whose parameters fail to decode with an `<ErrorMessage>`, as SystmOne does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RequestHeader {
    pub api_key: WireApiKey,
    pub device_id: Option<String>,
    pub device_version: String,
    pub request_uid: String,
    /// As sent; `Function::parse` it to learn whether it is known.
    pub function_name: String,
    pub function_version: String,
}

impl RequestHeader {
    /// SystmOne's error answer to this request; None if the function name is unknown
    /// (a response names its function with the typed `Function`).
    pub fn error_response(
        &self,
        device_id: Option<String>,
        message: impl Into<String>,
        permanent: bool,
    ) -> Option<Response> {
        let function = Function::parse(&self.function_name).ok()?;
        Some(Response {
            device_id,
            request_uid: self.request_uid.clone(),
            function,
            function_version: self.function_version.clone(),
            response_uid: uuid::Uuid::new_v4().to_string(),
            body: ResponseBody::Error {
                message: message.into(),
                permanent,
            },
        })
    }
}

/// Reads only the request envelope (root, APIKey, DeviceID, ..., Function).
pub fn decode_request_header(bytes: &[u8]) -> Result<RequestHeader, CodecError> {
    let text = document_text(bytes)?;
    let root = parse_root(&text, REQUEST_ROOT)?;
    Ok(RequestHeader {
        api_key: root.trimmed_of("APIKey").unwrap_or_default().into(),
        device_id: non_empty(root.trimmed_of("DeviceID")),
        device_version: root.text_of("DeviceVersion").unwrap_or_default(),
        request_uid: root.trimmed_of("RequestUID").unwrap_or_default(),
        function_name: root.trimmed_of("Function").unwrap_or_default(),
        function_version: root.trimmed_of("FunctionVersion").unwrap_or_default(),
    })
}

/// Either kind of document, for tools that are handed a file (`hubctl decode`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Document {
    Request(Request),
    Response(Response),
}

impl Document {
    /// Pretty JSON of the decoded document. It contains patient data.
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string_pretty(self)
    }
}

/// Decodes a request or a response, deciding by the root element.
pub fn decode_document(bytes: &[u8]) -> Result<Document, CodecError> {
    match decode_response(bytes) {
        Err(CodecError::WrongRoot { found, .. }) if found == REQUEST_ROOT => {
            decode_request(bytes).map(Document::Request)
        }
        Err(CodecError::WrongRoot { found, .. }) => Err(CodecError::WrongRoot {
            expected: "ClientIntegrationRequest or ClientIntegrationResponse",
            found,
        }),
        other => other.map(Document::Response),
    }
}

/// The body of the `decode_response` fuzz target, also run by property tests: decoding
/// arbitrary bytes must never panic, and whatever decodes must re-encode and decode to
/// the same value.
#[cfg(any(test, feature = "fuzzing"))]
pub fn fuzz_decode(data: &[u8]) {
    if let Ok(response) = decode_response(data) {
        if let Ok(xml) = encode_response(&response) {
            match decode_response(xml.as_bytes()) {
                Ok(again) => assert_eq!(again, response, "response changed after a round trip"),
                Err(e) => panic!("a re-encoded response failed to decode: {e}"),
            }
        }
    }
    if let Ok(request) = decode_request(data) {
        if let Ok(xml) = encode_request(&request) {
            match decode_request(xml.as_bytes()) {
                Ok(again) => assert_eq!(again, request, "request changed after a round trip"),
                Err(e) => panic!("a re-encoded request failed to decode: {e}"),
            }
        }
    }
}

#[cfg(test)]
mod tests;
