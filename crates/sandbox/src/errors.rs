//! Meta's error bodies: `{"error":{"message","type","code","error_subcode"?,"error_data"?,
//! "fbtrace_id"}}` with the HTTP status Meta's error table gives each code.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// A Graph API error as Meta returns it.
#[derive(Debug, Clone)]
pub struct GraphError {
    pub status: StatusCode,
    pub code: i64,
    pub subcode: Option<i64>,
    pub message: String,
    pub details: Option<String>,
    pub fbtrace_id: String,
}

/// Title and default details of the codes the sandbox produces.
pub fn describe(code: i64) -> (&'static str, &'static str) {
    match code {
        0 => ("AuthException", "We were unable to authenticate the app user."),
        1 => ("API Unknown", "Invalid request or possible server error."),
        2 => ("API Service", "Temporary due to downtime or due to being overloaded."),
        3 => ("API Method", "Capability or permissions issue."),
        4 => ("Too many calls", "The app has reached its API call rate limit."),
        10 => ("Permission denied", "Permission is either not granted or has been removed."),
        33 => ("Unsupported request", "Object does not exist, cannot be loaded due to missing permissions, or does not support this operation."),
        100 => ("Invalid parameter", "Invalid parameter."),
        190 => ("Access token has expired", "Invalid OAuth access token."),
        200 => ("API Permission", "Permission is either not granted or has been removed."),
        130429 => ("Rate limit hit", "Message failed to send because there were too many messages sent from this phone number in a short period of time."),
        131000 => ("Something went wrong", "Message failed to send due to an unknown error."),
        131005 => ("Access denied", "Permission is either not granted or has been removed."),
        131008 => ("Required parameter is missing", "The request is missing a required parameter."),
        131009 => ("Parameter value is not valid", "One or more parameter values are invalid."),
        131016 => ("Service unavailable", "A service is temporarily unavailable."),
        131021 => ("Recipient cannot be sender", "Sender and recipient phone number is the same."),
        131026 => ("Message undeliverable", "Unable to deliver message. Reasons can include: the recipient phone number is not a WhatsApp phone number; the recipient has not accepted our new Terms of Service and Privacy Policy; the recipient is using an old WhatsApp version."),
        131031 => ("Account has been locked", "Business Account is restricted from messaging users or the two-step verification PIN could not be verified."),
        131042 => ("Business eligibility payment issue", "There was an error related to your payment method."),
        131045 => ("Incorrect certificate", "Message failed to send due to a phone number registration error."),
        131047 => ("Re-engagement message", "Message failed to send because more than 24 hours have passed since the customer last replied to this number."),
        131051 => ("Unsupported message type", "Unsupported message type."),
        131053 => ("Media upload error", "Unable to upload the media used in the message."),
        131056 => ("(Business Account, Consumer Account) pair rate limit hit", "Too many messages sent from the sender phone number to the same recipient phone number in a short period of time."),
        131057 => ("Account in maintenance mode", "Business Account is in maintenance mode."),
        132000 => ("Number of parameters does not match the expected number of params", "The number of variable parameter values included in the request did not match the number of variable parameters defined in the template."),
        132001 => ("Template does not exist", "The template does not exist in the specified language or the template has not been approved."),
        132005 => ("Template Hydrated Text Too Long", "Translated text is too long."),
        132012 => ("Parameter format does not match format in the created template", "Variable parameter values formatted incorrectly."),
        132015 => ("Template is Paused", "Template is paused due to low quality so it cannot be sent in a template message."),
        132016 => ("Template is Disabled", "Template has been paused too many times due to low quality and is now permanently disabled."),
        133004 => ("Server temporarily unavailable", "Server is temporarily unavailable."),
        133005 => ("Two step verification PIN Mismatch", "Two-step verification PIN incorrect."),
        133006 => ("Phone number re-verification needed", "Phone number needs to be verified before registering."),
        133008 => ("Too many two step verification PIN guesses", "Too many two-step verification PIN guesses for this phone number."),
        133009 => ("Two step verification PIN Guessed Too Fast", "Two-step verification PIN was entered too quickly."),
        133010 => ("Phone number Not Registered", "Phone number not registered on the WhatsApp Business Platform."),
        133015 => ("Please wait a few minutes before attempting to register this phone number", "The phone number you are attempting to register was recently deleted, and deletion has not yet completed."),
        133016 => ("Account register deregister rate limit exceeded", "Registration or Deregistration failed because there were too many attempts for this phone number in a short period of time."),
        136024 => ("Phone number already verified", "The phone number is already verified."),
        136025 => ("Verify code error", "The code you entered is incorrect."),
        368 => ("Temporarily blocked for policies violations", "The WhatsApp Business Account associated with the app has been restricted or disabled for violating a platform policy."),
        80007 => ("Rate limit issues", "The WhatsApp Business Account has reached its rate limit."),
        _ => ("Unknown error", "An unknown error occurred."),
    }
}

/// The HTTP status Meta's error table gives a code.
pub fn http_status(code: i64) -> StatusCode {
    match code {
        0 | 190 => StatusCode::UNAUTHORIZED,
        10 | 131031 | 368 => StatusCode::FORBIDDEN,
        200..=299 => StatusCode::FORBIDDEN,
        4 | 80007 | 130429 | 131048 | 131056 => StatusCode::TOO_MANY_REQUESTS,
        2 | 131016 | 133004 => StatusCode::SERVICE_UNAVAILABLE,
        3 | 131000 => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    }
}

impl GraphError {
    /// An error with Meta's title for the code and the given details.
    pub fn new(code: i64, details: impl Into<String>) -> GraphError {
        let (title, _) = describe(code);
        let message = format!("(#{code}) {title}");
        GraphError {
            status: http_status(code),
            code,
            subcode: None,
            message,
            details: Some(details.into()),
            fbtrace_id: String::new(),
        }
    }

    /// An error with Meta's default details for the code.
    pub fn code(code: i64) -> GraphError {
        GraphError::new(code, describe(code).1)
    }

    /// Meta's generic "invalid parameter" with its message.
    pub fn invalid(message: impl Into<String>) -> GraphError {
        GraphError {
            status: StatusCode::BAD_REQUEST,
            code: 100,
            subcode: None,
            message: format!("(#100) {}", message.into()),
            details: None,
            fbtrace_id: String::new(),
        }
    }

    /// An OAuth error without `error_data`, as the token endpoints return them.
    pub fn oauth(code: i64, subcode: Option<i64>, message: impl Into<String>) -> GraphError {
        GraphError {
            status: http_status(code),
            code,
            subcode,
            message: message.into(),
            details: None,
            fbtrace_id: String::new(),
        }
    }

    /// Unknown, revoked or expired token (190).
    pub fn token(message: &str, subcode: Option<i64>) -> GraphError {
        GraphError::oauth(190, subcode, message)
    }

    /// An id that does not exist or that the token may not see (100 / subcode 33).
    pub fn unknown_object(id: &str, method: &str) -> GraphError {
        GraphError::oauth(
            100,
            Some(33),
            format!(
                "Unsupported {method} request. Object with ID '{id}' does not exist, cannot be loaded due to missing permissions, or does not support this operation. Please read the Graph API documentation at https://developers.facebook.com/docs/graph-api"
            ),
        )
    }

    pub fn with_subcode(mut self, subcode: i64) -> GraphError {
        self.subcode = Some(subcode);
        self
    }

    pub fn body(&self) -> Value {
        let mut error = json!({
            "message": self.message,
            "type": "OAuthException",
            "code": self.code,
        });
        if let Some(subcode) = self.subcode {
            error["error_subcode"] = json!(subcode);
        }
        if let Some(details) = &self.details {
            error["error_data"] = json!({"messaging_product": "whatsapp", "details": details});
        }
        error["fbtrace_id"] = json!(self.fbtrace_id);
        json!({ "error": error })
    }

    /// The error object as it appears in `statuses[].errors[]` of a webhook.
    pub fn webhook_error(code: i64) -> Value {
        let (title, details) = describe(code);
        json!({
            "code": code,
            "title": title,
            "message": title,
            "error_data": {"details": details},
            "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"
        })
    }
}

impl IntoResponse for GraphError {
    fn into_response(self) -> Response {
        (self.status, [("www-authenticate", "OAuth \"Facebook Platform\" \"invalid_request\"")], axum::Json(self.body()))
            .into_response()
    }
}
