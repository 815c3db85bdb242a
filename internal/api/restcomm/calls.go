package restcomm

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/tapedeck/tapedeck/internal/store/meta"
)

// The Calls resource lists the account's call detail records (newest
// first) in Restcomm's Calls list shape: GET
// /restcomm/2012-04-24/Accounts/{AccountSid}/Calls.json with Page and
// PageSize. tapedeck adds the SIP Call-ID, channel id, hangup cause and RTP
// figures.

type callJSON struct {
	Sid             string            `json:"sid"`
	DateCreated     string            `json:"date_created"`
	DateUpdated     string            `json:"date_updated"`
	ParentCallSid   *string           `json:"parent_call_sid"`
	AccountSid      string            `json:"account_sid"`
	To              string            `json:"to"`
	From            string            `json:"from"`
	PhoneNumberSid  *string           `json:"phone_number_sid"`
	Status          string            `json:"status"`
	StartTime       string            `json:"start_time"`
	EndTime         string            `json:"end_time"`
	Duration        string            `json:"duration"`
	Price           *string           `json:"price"`
	Direction       string            `json:"direction"`
	AnsweredBy      *string           `json:"answered_by"`
	APIVersion      string            `json:"api_version"`
	ForwardedFrom   *string           `json:"forwarded_from"`
	CallerName      *string           `json:"caller_name"`
	URI             string            `json:"uri"`
	SubresourceURIs map[string]string `json:"subresource_uris"`
	// tapedeck's.
	SIPCallID   string  `json:"sip_call_id"`
	ChannelID   string  `json:"channel_id"`
	Billsec     string  `json:"billsec"`
	HangupCause int     `json:"hangup_cause"`
	CauseText   string  `json:"hangup_cause_text"`
	RTPReceived int64   `json:"rtp_received"`
	RTPLost     int64   `json:"rtp_lost"`
	JitterMs    float64 `json:"rtp_jitter_ms"`
}

type callListJSON struct {
	Page            int        `json:"page"`
	NumPages        int        `json:"num_pages"`
	PageSize        int        `json:"page_size"`
	Total           int        `json:"total"`
	Start           string     `json:"start"`
	End             string     `json:"end"`
	URI             string     `json:"uri"`
	FirstPageURI    string     `json:"first_page_uri"`
	PreviousPageURI *string    `json:"previous_page_uri"`
	NextPageURI     *string    `json:"next_page_uri"`
	LastPageURI     string     `json:"last_page_uri"`
	Calls           []callJSON `json:"calls"`
}

func (s *Server) listCalls(w http.ResponseWriter, r *http.Request, req *request, acc meta.Account) {
	cdrs, ok := s.o.Catalog.Meta.(meta.CDRs)
	if !ok {
		s.writeError(w, "json", fail(404, "The requested resource was not found"))
		return
	}
	q := r.URL.Query()
	page, err := intParam(q, "Page", 0, 0)
	if err != nil {
		s.writeError(w, "json", err)
		return
	}
	pageSize, err := intParam(q, "PageSize", DefaultPageSize, 1)
	if err != nil {
		s.writeError(w, "json", err)
		return
	}
	pageSize = min(pageSize, MaxPageSize)
	items, total, err := cdrs.ListCDRs(r.Context(), meta.CDRQuery{AccountSid: acc.Sid, Offset: page * pageSize, Limit: pageSize})
	if err != nil {
		s.writeError(w, "json", err)
		return
	}
	numPages := 0
	if total > 0 {
		numPages = (total+pageSize-1)/pageSize - 1
	}
	uri := req.prefix + "/" + APIVersion + "/Accounts/" + acc.Sid + "/Calls.json"
	pageURI := func(p int) string { return fmt.Sprintf("%s?Page=%d&PageSize=%d", uri, p, pageSize) }
	out := callListJSON{Page: page, NumPages: numPages, PageSize: pageSize, Total: total,
		Start: strconv.Itoa(page * pageSize), End: strconv.Itoa(max(page*pageSize+len(items)-1, page*pageSize)),
		URI: uri, FirstPageURI: pageURI(0), LastPageURI: pageURI(numPages), Calls: []callJSON{}}
	if page > 0 {
		p := pageURI(page - 1)
		out.PreviousPageURI = &p
	}
	if page < numPages {
		p := pageURI(page + 1)
		out.NextPageURI = &p
	}
	for _, c := range items {
		base := "/" + APIVersion + "/Accounts/" + c.AccountSid + "/Calls/" + c.Sid
		out.Calls = append(out.Calls, callJSON{
			Sid: c.Sid, DateCreated: c.StartTime.UTC().Format(dateLayout), DateUpdated: c.EndTime.UTC().Format(dateLayout),
			AccountSid: c.AccountSid, To: c.To, From: c.From, Status: c.Status,
			StartTime: c.StartTime.UTC().Format(dateLayout), EndTime: c.EndTime.UTC().Format(dateLayout),
			Duration: strconv.Itoa(int(c.Duration + 0.5)), Direction: c.Direction, APIVersion: APIVersion,
			URI: base + ".json", SubresourceURIs: map[string]string{"recordings": base + "/Recordings.json"},
			SIPCallID: c.CallID, ChannelID: c.ChannelID, Billsec: strconv.Itoa(int(c.Billsec + 0.5)),
			HangupCause: c.Cause, CauseText: c.CauseText, RTPReceived: c.RTPReceived, RTPLost: c.RTPLost, JitterMs: c.JitterMs,
		})
	}
	writeJSON(w, 200, out)
}
