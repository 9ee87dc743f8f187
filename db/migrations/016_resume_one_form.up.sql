-- bd_session_resume's 2-argument form (memberships sent on every resume)
-- lost its last caller when the HTTP session look-ups moved into bd_ctl
-- (which passes the known rooms_version); only the 3-argument form in
-- db/functions/bd_session_resume.sql stays.
DROP FUNCTION IF EXISTS bd_session_resume(text, double precision);
